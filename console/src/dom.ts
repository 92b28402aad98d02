/**
 * A tiny element builder. Text always goes in as text nodes: alert contents can never become
 * markup (there is no innerHTML anywhere in the console).
 */
export type Child = Node | string | number | null | undefined | false | Child[];
type AttrValue = string | number | boolean | null | undefined | ((ev: never) => void);

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, AttrValue> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') {
      el.addEventListener(name.slice(2).toLowerCase(), value as EventListener);
    } else if (name === 'class') {
      el.className = String(value);
    } else if (name === 'value' && 'value' in el) {
      (el as HTMLInputElement).value = String(value);
    } else if (name === 'checked') {
      (el as HTMLInputElement).checked = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/**
 * A form field: the label bound to the control by id, then the control (which carries that id),
 * and a help line the control may point at with aria-describedby (id `<id>-help`).
 */
export function field(id: string, label: string, control: HTMLElement, opts: { wide?: boolean; help?: string } = {}): HTMLDivElement {
  return h(
    'div',
    { class: opts.wide ? 'field wide' : 'field' },
    h('label', { for: id }, label),
    control,
    opts.help !== undefined && h('p', { id: `${id}-help`, class: 'muted' }, opts.help),
  );
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

let nextId = 0;
export function uid(prefix: string): string {
  return `${prefix}-${++nextId}`;
}
