// The realtime inspector: connected clients and their channels, the replication slot's state and lag, and a
// live view of postgres_changes and broadcast messages on a channel the admin picks (a Phoenix WebSocket to
// the project's public /realtime/v1 with its service key).
import { get, items, serviceKey } from '../api.js';
import { bytes, dateTime } from '../format.js';
import { action, clear, field, h, table } from '../ui.js';

let socket = null;

function live(ref, out, status, { topic, schema, tableName }) {
  if (socket) socket.close();
  return serviceKey(ref).then((key) => {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/realtime/v1/websocket?apikey=${encodeURIComponent(key)}&vsn=1.0.0`);
    socket = ws;
    let counter = 0;
    const send = (t, event, payload) => ws.send(JSON.stringify({ topic: t, event, payload, ref: String(++counter) }));
    const full = `realtime:${topic}`;
    let beat = null;
    ws.addEventListener('open', () => {
      status.textContent = `Connected; joining ${topic}…`;
      const changes = tableName ? [{ event: '*', schema: schema || 'public', table: tableName }] : [];
      send(full, 'phx_join', { config: { broadcast: { self: true }, presence: { key: '' }, postgres_changes: changes }, access_token: key });
      beat = setInterval(() => send('phoenix', 'heartbeat', {}), 25000);
    });
    ws.addEventListener('message', (e) => {
      let msg; try { msg = JSON.parse(e.data); } catch { return; }
      if (msg.event === 'phx_reply' && msg.topic === full) {
        status.textContent = msg.payload && msg.payload.status === 'ok' ? `Listening on ${topic}` : `Join refused: ${JSON.stringify(msg.payload && msg.payload.response)}`;
        return;
      }
      if (msg.topic === 'phoenix' || msg.event === 'presence_state' || msg.event === 'presence_diff' || msg.event === 'system') return;
      out.prepend(h('li', {}, h('code', {}, `${new Date().toISOString().slice(11, 19)} ${msg.event}`), ' ', h('pre', {}, JSON.stringify(msg.payload, null, 2))));
      while (out.children.length > 100) out.lastChild.remove();
    });
    ws.addEventListener('close', () => { clearInterval(beat); if (socket === ws) status.textContent = 'Disconnected'; });
  });
}

export default async function realtimePage({ main, ref }) {
  const [connections, replication] = await Promise.all([
    get(`/projects/${ref}/realtime/connections`), get(`/projects/${ref}/realtime/replication`).catch(() => null)]);
  const conns = items(connections, 'connections');
  const slot = replication && replication.slot;
  const consumer = (replication && replication.consumer) || {};
  const slots = replication ? [{ slot_name: replication.slot_name, active: slot ? slot.active : false,
    lag_bytes: consumer.lag_bytes ?? (slot && slot.lag_bytes), wal_level: replication.wal_level,
    consumer: consumer.started ? (consumer.running ? 'running' : 'stopped') : 'not started', error: consumer.error }] : [];
  const topic = h('input', { value: 'room-1' });
  const schema = h('input', { value: 'public' });
  const tableName = h('input', { placeholder: 'optional: a table for postgres_changes' });
  const status = h('p', { class: 'muted', role: 'status' }, 'Not listening.');
  const out = h('ol', { class: 'log', 'aria-label': 'Messages' });
  clear(main, h('h1', {}, 'Realtime'),
    h('h2', {}, 'Connected clients'),
    table([
      { key: 'id', label: 'Connection', render: (c) => c.id || c.request_id }, { key: 'ip', label: 'IP', render: (c) => c.ip || c.client_ip },
      { key: 'role', label: 'Role' },
      { key: 'channels', label: 'Channels', render: (c) => [].concat(c.channels || c.topics || []).map((x) => (typeof x === 'string' ? x : x.topic)).join(', ') },
      { key: 'connected_at', label: 'Since', render: (c) => dateTime(c.connected_at) },
    ], conns, { empty: 'No client connected.' }),
    h('h2', {}, 'Replication'),
    table([
      { key: 'slot_name', label: 'Slot' }, { key: 'wal_level', label: 'wal_level' },
      { key: 'active', label: 'Slot active', render: (s) => String(Boolean(s.active)) },
      { key: 'consumer', label: 'Consumer' }, { key: 'lag_bytes', label: 'Lag', render: (s) => bytes(s.lag_bytes) },
      { key: 'error', label: 'Error' },
    ], slots, { empty: 'No replication slot.' }),
    h('section', { class: 'card' }, h('h2', {}, 'Live view'),
      h('div', { class: 'row' }, field('Channel', topic), field('Schema', schema), field('Table', tableName)),
      h('div', { class: 'row' },
        action('Listen', () => live(ref, out, status, { topic: topic.value.trim() || 'room-1', schema: schema.value.trim(), tableName: tableName.value.trim() }), { class: 'primary' }),
        action('Stop', async () => { if (socket) socket.close(); socket = null; status.textContent = 'Not listening.'; })),
      status, out));
}
