import { getJson, ApiError } from './api';
import { h, replace } from './dom';
import { t } from './i18n';
import { decodeToken, type Session } from './session';

/**
 * The sign-in page: a "Token" field (paste, or drop a token file) and "Sign in"; in embedded mode
 * with the development trust store, one-click development desks as well.
 */

interface DevDesk {
  id: string;
  state: string;
  stateName: string;
  role: 'desk' | 'ops';
}

export function signInView(opts: { message?: string; langPicker: HTMLElement; onSignedIn(s: Session): void }): HTMLElement {
  const msg = h('p', { class: 'signin-message', role: 'alert' }, opts.message ?? '');
  const field = h('textarea', {
    id: 'token',
    name: 'token',
    rows: 4,
    spellcheck: 'false',
    autocomplete: 'off',
    'aria-describedby': 'token-help',
    required: true,
  });
  field.addEventListener('dragover', (ev) => ev.preventDefault());
  field.addEventListener('drop', (ev) => {
    const file = ev.dataTransfer?.files?.[0];
    if (!file) return;
    ev.preventDefault();
    void file.text().then((text) => {
      field.value = text.trim();
    });
  });
  const button = h('button', { type: 'submit', class: 'primary' }, t('signIn'));

  async function attempt(token: string): Promise<void> {
    const claims = decodeToken(token);
    if (!claims) {
      replace(msg, t('notAToken'));
      return;
    }
    replace(msg, t('signingIn'));
    button.disabled = true;
    try {
      await getJson('/v1/regions', { token: token.trim() });
      replace(msg, '');
      opts.onSignedIn({ token: token.trim(), claims });
    } catch (err) {
      replace(msg, t('tokenRejected', { reason: err instanceof ApiError ? err.message : String(err) }));
    } finally {
      button.disabled = false;
    }
  }

  const form = h(
    'form',
    {
      class: 'signin-form',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        void attempt(field.value);
      },
    },
    h('label', { for: 'token' }, t('token')),
    field,
    h('p', { id: 'token-help', class: 'muted' }, t('tokenHelp')),
    button,
  );

  const dev = h('section', { class: 'dev-desks', hidden: true, 'aria-labelledby': 'dev-desks-title' });
  void getJson<{ desks: DevDesk[] }>('/console/dev-desks')
    .then(({ desks }) => {
      if (!desks.length) return;
      replace(
        dev,
        h('h2', { id: 'dev-desks-title' }, t('devDesks')),
        h('p', { class: 'muted' }, t('devDesksHelp')),
        h(
          'ul',
          { class: 'dev-desk-list' },
          desks.map((d) =>
            h(
              'li',
              {},
              h(
                'button',
                {
                  type: 'button',
                  onclick: () => {
                    // Every failure is caught here and shown beside the buttons.
                    void (async () => {
                      try {
                        const r = await getJson<{ token: string }>(`/console/dev-desks/${encodeURIComponent(d.id)}`, { method: 'POST' });
                        await attempt(r.token);
                      } catch (err) {
                        replace(msg, String((err as Error).message));
                      }
                    })();
                  },
                },
                t('devDeskButton', { stateName: d.stateName, state: d.state, role: t(d.role === 'ops' ? 'role_ops' : 'role_desk') }),
              ),
            ),
          ),
        ),
      );
      dev.hidden = false;
    })
    .catch(() => undefined);

  return h(
    'main',
    { class: 'signin', id: 'main' },
    h('div', { class: 'signin-top' }, h('h1', {}, t('appTitle')), opts.langPicker),
    h('section', { class: 'card', 'aria-labelledby': 'signin-title' }, h('h2', { id: 'signin-title' }, t('signInTitle')), msg, form),
    dev,
  );
}
