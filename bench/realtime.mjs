// The client side of bench/realtime: many WebSockets straight to
// streamvibe-realtime, Phoenix vsn 2.0.0 by hand (a supabase-js client
// per socket would measure the client), each subscribed to INSERTs on
// handle_content. Driven over stdin/stdout by bench/realtime:
//
//   node realtime.mjs <ws-url> <tokens-file> <sockets> [<table> [own]]
//     -> "READY <ms to open and subscribe all>"
//   stdin "EXPECT <n>"   wait until n messages arrived (or 60 s), then print
//     -> "STATS {json}"  n, received, latency p50/p90/p99/max in ms
//   stdin "QUIT"
//
// Latency is the time a message is handled here minus its
// commit_timestamp (the row's clock_timestamp() in the capture trigger,
// same host clock): COMMIT -> the daemon -> this process's event loop.
// tokens-file: one access token per line ("token<TAB>user id" for own),
// used round-robin. table: handle_content (default) or audit_log; own:
// each socket filters user_id=eq.<its user>, as the V2 document's code.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const [url, tokensFile, nArg, table = 'handle_content', own] = process.argv.slice(2);
const N = Number(nArg);
const tokens = readFileSync(tokensFile, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
const sockets = [];
let subscribed = 0;
let failed = 0;
let latencies = [];
let received = 0;
const t0 = Date.now();

function onMessage(ev) {
    const text = typeof ev.data === 'string' ? ev.data : '';
    // Cheap routing before parsing the payload.
    if (text.includes('"postgres_changes",{"ids"')) {
        const m = JSON.parse(text);
        latencies.push(Date.now() - Date.parse(m[4].data.commit_timestamp));
        received++;
    } else if (text.includes('"system"') && text.includes('Subscribed to PostgreSQL')) {
        subscribed++;
        if (subscribed + failed === N) console.log(`READY ${Date.now() - t0} ${subscribed} ${failed}`);
    } else if (text.includes('"status":"error"')) {
        failed++;
        if (failed < 5) console.error(`error: ${text}`);
        if (subscribed + failed === N) console.log(`READY ${Date.now() - t0} ${subscribed} ${failed}`);
    }
}

// Open with at most 200 handshakes in flight.
let next = 0, inFlight = 0;
function openMore() {
    while (inFlight < 200 && next < N) {
        const i = next++;
        inFlight++;
        const ws = new WebSocket(`${url}?apikey=${tokens[0][0]}&vsn=2.0.0`);
        const [token, user] = tokens[i % tokens.length];
        const binding = { event: 'INSERT', schema: 'public', table };
        if (own) binding.filter = `user_id=eq.${user}`;
        sockets.push(ws);
        ws.onopen = () => {
            inFlight--;
            ws.send(JSON.stringify(['1', '1', 'realtime:bench', 'phx_join', {
                config: { broadcast: { ack: false, self: false }, presence: { key: '', enabled: false },
                          postgres_changes: [binding], private: false },
                access_token: token }]));
            openMore();
        };
        ws.onmessage = onMessage;
        ws.onerror = () => {
            if (ws.readyState !== 1) inFlight--;
            failed++;
            if (subscribed + failed === N) console.log(`READY ${Date.now() - t0} ${subscribed} ${failed}`);
            openMore();
        };
    }
}
openMore();
// Never wait for ever: say how far it got.
setTimeout(() => {
    if (subscribed + failed < N) console.log(`READY ${Date.now() - t0} ${subscribed} ${N - subscribed}`);
}, 120000).unref();

// Heartbeats (the daemon drops sockets silent for 60 s).
let hb = 0;
setInterval(() => {
    for (const ws of sockets) if (ws.readyState === 1) ws.send(JSON.stringify([null, `h${hb}`, 'phoenix', 'heartbeat', {}]));
    hb++;
}, 25000).unref();

function pct(sorted, p) {
    if (!sorted.length) return null;
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
    const [cmd, arg] = line.trim().split(/\s+/);
    if (cmd === 'EXPECT') {
        const want = Number(arg);
        const end = Date.now() + 60000;
        while (received < want && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        const s = Float64Array.from(latencies).sort();
        console.log('STATS ' + JSON.stringify({ expected: want, received, p50: pct(s, 0.5), p90: pct(s, 0.9),
            p99: pct(s, 0.99), max: s.length ? s[s.length - 1] : null }));
        latencies = [];
        received = 0;
    } else if (cmd === 'QUIT') {
        for (const ws of sockets) try { ws.close(); } catch (e) { /* closing */ }
        setTimeout(() => process.exit(0), 500);
    }
});
