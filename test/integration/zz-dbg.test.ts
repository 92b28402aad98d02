import { makeTestApp } from '../helpers/app';
import { injectDesk, socketDesk } from '../helpers/desk';
test('dbg', async () => {
    const t = await makeTestApp({ backend: 'memory' });
    const R = t.regions.list()[0].code;
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const url = `ws://127.0.0.1:${(t.app.server.address() as { port: number }).port}/v1/stream`;
    const a = await socketDesk(url, t.token());
    const b = await injectDesk(t.app, t.token());
    const t0 = Date.now();
    a.closed.then(() => console.log('a closed', Date.now() - t0));
    b.closed.then(() => console.log('b closed', Date.now() - t0));
    for (const s of t.app.deskSessions) s.ws.once('close', () => console.log('server side closed', Date.now() - t0));
    await t.close();
    console.log('app closed', Date.now() - t0);
});
