// The V2 design document's own supabase-js calls, run against a StreamVibe
// server, with their results asserted. Prints TAP on stdout.
//
// Run by t/500-supabase-js.t, which starts PostgreSQL, the pool and nginx,
// installs @supabase/supabase-js (t/js/package-lock.json) into a cache
// directory and runs this file from there. By hand:
//
//   SUPABASE_URL=http://127.0.0.1:8080 SUPABASE_ANON_KEY=... \
//   SUPABASE_SERVICE_KEY=... node --experimental-websocket v2-design.mjs
//
// (--experimental-websocket only on Node 20/21: supabase-js builds its
// realtime client in createClient() and wants a WebSocket class; Node 22+
// has one built in. The realtime client is never connected here.)
//
// Every HTTP exchange goes through a logging fetch; a failed assertion
// prints the exchanges of its step as TAP comments, so a report can quote
// the exact request and response. Set SV_JS_TRACE=1 to print all of them.
//
// Nothing is skipped: a feature the server lacks shows up as "not ok".

import { createClient } from '@supabase/supabase-js';
import { deepStrictEqual } from 'node:assert';
import { randomBytes } from 'node:crypto';

const URL_ = process.env.SUPABASE_URL;
const ANON_KEY = process.env.SUPABASE_ANON_KEY;
const SERVICE_KEY = process.env.SUPABASE_SERVICE_KEY;
const TRACE = !!process.env.SV_JS_TRACE;
const WATCHDOG_MS = Number(process.env.SV_JS_TIMEOUT_MS || 180000);
const FETCH_TIMEOUT_MS = 20000;

if (!URL_ || !ANON_KEY || !SERVICE_KEY) {
    console.log('1..0 # SKIP SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_KEY must be set');
    process.exit(1);
}

// ---------------------------------------------------------------------
// TAP
// ---------------------------------------------------------------------
let testNo = 0;
let failed = 0;

function diag(text) {
    for (const line of String(text).split('\n')) console.log(`# ${line}`);
}

// Exchanges since the current step began (see step()), and how many of
// them had been made at the previous assertion.
let exchanges = [];
let mark = 0;

function dumpExchanges(list) {
    for (const x of list) diag(formatExchange(x));
}

function ok(cond, name, extra) {
    testNo += 1;
    const clean = String(name).replace(/#/g, '\\#').replace(/\n/g, ' ');
    if (cond) {
        console.log(`ok ${testNo} - ${clean}`);
        mark = exchanges.length;
        return true;
    }
    failed += 1;
    console.log(`not ok ${testNo} - ${clean}`);
    if (extra !== undefined) diag(typeof extra === 'string' ? extra : safeJson(extra));
    // The HTTP exchanges made since the previous assertion: the call(s)
    // this assertion is about.
    const recent = exchanges.length > mark ? exchanges.slice(mark).slice(-3) : exchanges.slice(-1);
    if (recent.length) {
        diag('HTTP exchange(s) behind this assertion:');
        dumpExchanges(recent);
    }
    mark = exchanges.length;
    return false;
}

// An expected value that is itself missing (undefined or null) never
// matches: it means an earlier call failed, and "null === null" is no pass.
// (Expect null with isDeeply.)
function is(got, want, name) {
    return ok(want !== undefined && want !== null && Object.is(got, want), name, `got:      ${safeJson(got)}\nexpected: ${safeJson(want)}`);
}

function isDeeply(got, want, name) {
    let same = true;
    try { deepStrictEqual(got, want); } catch { same = false; }
    if (got === undefined) same = false;
    return ok(same, name, `got:      ${safeJson(got)}\nexpected: ${safeJson(want)}`);
}

// The { data, error, status } of a supabase-js call: succeeded?
function okResult(res, name) {
    const good = res && !res.error;
    return ok(good, name, res ? { status: res.status, error: res.error, data: res.data } : 'no result');
}

// Refused with an error (and, if given, this HTTP status)?
// (postgrest-js puts the HTTP status on the result, auth-js on the error.)
function okRefused(res, status, name) {
    const got = res && (res.status !== undefined ? res.status : res.error && res.error.status);
    const good = res && res.error && (status === undefined || got === status);
    return ok(good, name, res ? { expected_status: status, status: got, error: res.error, data: res.data }
        : 'no result');
}

function safeJson(v) {
    try {
        return JSON.stringify(v, (k, x) => (x instanceof Error ? { name: x.name, message: x.message, status: x.status, code: x.code } : x));
    } catch {
        return String(v);
    }
}

// A step: a named group of assertions. An exception inside it (a
// supabase-js call that threw, or a missing prerequisite) is one failure
// and the next step still runs.
async function step(title, fn) {
    diag(`--- ${title}`);
    exchanges = [];
    mark = 0;
    try {
        await fn();
    } catch (e) {
        ok(false, `${title}: threw ${e && e.message ? e.message : e}`, e && e.stack ? e.stack : undefined);
    }
}

function need(value, what) {
    if (value === undefined || value === null) throw new Error(`prerequisite missing: ${what}`);
    return value;
}

// ---------------------------------------------------------------------
// Logging fetch, handed to every client as global.fetch
// ---------------------------------------------------------------------
const SECRET_HEADERS = new Set(['authorization', 'apikey']);

function shortToken(v) {
    // Enough of a JWT to tell tokens apart, not enough to reuse it.
    return v.length > 24 ? `${v.slice(0, 16)}…(${v.length} chars)` : v;
}

function headerObject(h) {
    const out = {};
    if (!h) return out;
    const entries = h instanceof Headers ? h.entries() : Array.isArray(h) ? h : Object.entries(h);
    for (const [k, v] of entries) {
        out[k.toLowerCase()] = SECRET_HEADERS.has(k.toLowerCase()) ? shortToken(String(v)) : String(v);
    }
    return out;
}

function formatExchange(x) {
    const lines = [`> ${x.method} ${x.url}`];
    for (const [k, v] of Object.entries(x.reqHeaders)) {
        if (['authorization', 'apikey', 'prefer', 'accept', 'content-type', 'range', 'accept-profile', 'content-profile'].includes(k)) {
            lines.push(`> ${k}: ${v}`);
        }
    }
    if (x.reqBody) lines.push(`> ${truncate(x.reqBody.replace(/"password":"[^"]*"/g, '"password":"…"'), 600)}`);
    if (x.error) {
        lines.push(`< (no response: ${x.error})`);
    } else {
        lines.push(`< ${x.status} ${x.statusText}`);
        for (const k of ['content-type', 'content-range', 'location', 'www-authenticate', 'allow', 'retry-after']) {
            if (x.resHeaders[k] !== undefined) lines.push(`< ${k}: ${x.resHeaders[k]}`);
        }
        if (x.resBody) lines.push(`< ${truncate(x.resBody.replace(/"(access_token|refresh_token)":"[^"]*"/g, '"$1":"…"'), 1200)}`);
    }
    return lines.join('\n');
}

function truncate(s, n) {
    return s.length > n ? `${s.slice(0, n)}…(${s.length} bytes)` : s;
}

const realFetch = globalThis.fetch;

async function loggingFetch(input, init = {}) {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = (init.method || (input && input.method) || 'GET').toUpperCase();
    const x = {
        method,
        url,
        reqHeaders: headerObject(init.headers || (input && input.headers)),
        reqBody: typeof init.body === 'string' ? init.body : init.body ? '[body]' : '',
    };
    exchanges.push(x);
    const signal = init.signal || AbortSignal.timeout(FETCH_TIMEOUT_MS);
    let res;
    try {
        res = await realFetch(input, { ...init, signal });
    } catch (e) {
        x.error = e && e.cause ? `${e.message}: ${e.cause.message || e.cause}` : String(e && e.message);
        if (TRACE) diag(formatExchange(x));
        throw e;
    }
    x.status = res.status;
    x.statusText = res.statusText;
    x.resHeaders = headerObject(res.headers);
    try {
        x.resBody = await res.clone().text();
    } catch (e) {
        x.resBody = `[unreadable: ${e.message}]`;
    }
    if (TRACE) diag(formatExchange(x));
    return res;
}

// ---------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------
// The document's createClient(url, key). The options only make the client
// behave in a test process: no token refresh timer, no URL parsing, and
// our logging fetch. Sessions are still kept in memory, so a client sends
// its user's access token after signUp/signIn, as in the browser.
const clientOptions = {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { fetch: loggingFetch },
};
if (typeof globalThis.WebSocket === 'undefined') {
    // Running by hand on Node 20 without --experimental-websocket: give
    // the (never connected) realtime client a transport that says so.
    clientOptions.realtime = {
        transport: class NoWebSocket {
            constructor() { throw new Error('realtime is not used by this test'); }
        },
    };
}

function newClient(key) {
    return createClient(URL_, key, clientOptions);
}

const run = randomBytes(4).toString('hex');
const emailA = `v2doc-a-${run}@example.com`;
const emailB = `v2doc-b-${run}@example.com`;
const passwordA = `Corr3ct-horse-${run}`;
const passwordA2 = `Batt3ry-staple-${run}`;
const passwordB = `Tr0ub4dor-${run}`;

let supabase = newClient(ANON_KEY);            // user A's browser client
let supabaseB = newClient(ANON_KEY);           // user B's browser client
const anon = newClient(ANON_KEY);              // a visitor, never signs in
const service = newClient(SERVICE_KEY);        // an Edge Function (service_role)

const S = {};   // ids shared between steps

const watchdog = setTimeout(() => {
    ok(false, `watchdog: the script did not finish within ${WATCHDOG_MS} ms`);
    console.log(`1..${testNo}`);
    process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const ids = (rows) => (Array.isArray(rows) ? rows.map((r) => r.id).sort() : rows);

// ---------------------------------------------------------------------
// 1. Accounts: signUp, signInWithPassword, getUser; a second user
// ---------------------------------------------------------------------
await step('1. auth: sign up and sign in', async () => {
    const up = await supabase.auth.signUp({ email: emailA, password: passwordA });
    okResult(up, 'signUp(A) succeeds');
    ok(up.data && up.data.session && typeof up.data.session.access_token === 'string'
        && typeof up.data.session.refresh_token === 'string',
    'signUp(A) returns a session (access and refresh token)', up.data);
    ok(up.data && up.data.user && /^[0-9a-f-]{36}$/.test(up.data.user.id), 'signUp(A) returns the user with a uuid id', up.data);
    is(up.data && up.data.user && up.data.user.email, emailA, 'signUp(A): user.email');

    const signedIn = await supabase.auth.signInWithPassword({ email: emailA, password: passwordA });
    okResult(signedIn, 'signInWithPassword(A) succeeds');
    const sess = signedIn.data && signedIn.data.session;
    ok(sess && sess.access_token && sess.refresh_token && sess.token_type === 'bearer'
        && Number.isInteger(sess.expires_in) && sess.expires_in > 0 && Number.isInteger(sess.expires_at),
    'signInWithPassword(A): GoTrue session shape (access_token, refresh_token, token_type bearer, expires_in, expires_at)',
    sess);
    S.userA = signedIn.data && signedIn.data.user;
    is(S.userA && S.userA.id, up.data && up.data.user && up.data.user.id, 'signInWithPassword(A): same user id as signUp');

    const me = await supabase.auth.getUser();
    okResult(me, 'getUser() as A succeeds');
    is(me.data && me.data.user && me.data.user.id, S.userA && S.userA.id, 'getUser(): A\'s id');
    is(me.data && me.data.user && me.data.user.email, emailA, 'getUser(): A\'s email');

    const bad = await anon.auth.signInWithPassword({ email: emailA, password: 'wrong-password-123' });
    okRefused(bad, 400, 'signInWithPassword with a wrong password is refused (400)');
    ok(!bad.data || !bad.data.session, 'no session for a wrong password', bad.data);

    const dup = await anon.auth.signUp({ email: emailA, password: passwordA });
    ok(dup.error || !(dup.data && dup.data.session), 'signing up an existing email again gives no session', dup);

    const upB = await supabaseB.auth.signUp({ email: emailB, password: passwordB });
    okResult(upB, 'signUp(B) succeeds');
    const inB = await supabaseB.auth.signInWithPassword({ email: emailB, password: passwordB });
    okResult(inB, 'signInWithPassword(B) succeeds');
    S.userB = inB.data && inB.data.user;
    ok(S.userB && S.userA && S.userB.id !== S.userA.id, 'B is a different user', { A: S.userA, B: S.userB });
    S.authA = !!(signedIn.data && signedIn.data.session && me.data && me.data.user && S.userA && me.data.user.id === S.userA.id);
    S.authB = !!(inB.data && inB.data.session && S.userB);
});

// When /auth/v1 did not give us working sessions, the wrapper's fallback
// users (made in SQL, tokens minted with GoTrue's claims) let steps 2-8
// still exercise /rest/v1. Step 1 has failed already, so this cannot hide
// anything; it only keeps one broken endpoint family from masking the other.
function adoptFallback(which) {
    const raw = process.env[`SV_FALLBACK_${which}`];
    if (!raw) return;
    const f = JSON.parse(raw);
    diag(`auth for user ${which} did not work: continuing with fallback user ${f.email} (${f.id}) made in SQL`);
    const client = createClient(URL_, ANON_KEY, {
        ...clientOptions,
        global: { ...clientOptions.global, headers: { Authorization: `Bearer ${f.access_token}` } },
    });
    if (which === 'A') { supabase = client; S.userA = { id: f.id, email: f.email }; S.fallbackA = true; }
    else { supabaseB = client; S.userB = { id: f.id, email: f.email }; }
}
if (!S.authA) adoptFallback('A');
if (!S.authB) adoptFallback('B');

// ---------------------------------------------------------------------
// 2. A adds a handle and content
// ---------------------------------------------------------------------
const contentRows = {
    // The words are in exactly one field each, so ranking is title > description > tags.
    title:   { platform_content_id: `title-${run}`, title: 'Quick cooking recipe for pasta', description: 'A weeknight dinner.', tags: ['food'] },
    desc:    { platform_content_id: `desc-${run}`, title: 'Weeknight pasta', description: 'A cooking recipe anyone can follow.', tags: ['dinner'] },
    tags:    { platform_content_id: `tags-${run}`, title: 'Pasta night', description: 'Dinner ideas for friends.', tags: ['cooking', 'recipe'] },
    nomatch: { platform_content_id: `nomatch-${run}`, title: 'Cooking gear review', description: 'Knives and pans.', tags: ['kitchen'] },
};

await step('2. handles and content as user A', async () => {
    need(S.userA, 'user A');
    const { data: platform, error: pErr } = await supabase.from('platforms').select('*').eq('name', 'youtube').single();
    ok(!pErr && platform && platform.name === 'youtube' && platform.id, "from('platforms').select('*').eq('name','youtube').single()", { platform, pErr });
    S.platformId = platform && platform.id;
    need(S.platformId, 'youtube platform id');

    const ins = await supabase.from('account_handles')
        .insert({ platform_id: S.platformId, handle: `chef_${run}`, display_name: `Chef ${run}` })
        .select().single();
    okResult(ins, "from('account_handles').insert({...}).select().single()");
    is(ins.status, 201, 'insert answers 201');
    S.handle = ins.data;
    is(S.handle && S.handle.user_id, S.userA.id, 'the new handle belongs to A (user_id defaulted from the token)');
    is(S.handle && S.handle.visibility, 'public', 'the new handle is public by default');
    need(S.handle && S.handle.id, 'handle id');

    const rows = Object.values(contentRows).map((r) => ({ handle_id: S.handle.id, platform_id: S.platformId, ...r }));
    const cIns = await supabase.from('handle_content').insert(rows).select();
    okResult(cIns, "from('handle_content').insert([4 rows]).select()");
    ok(Array.isArray(cIns.data) && cIns.data.length === 4, 'four content rows returned', cIns.data);
    S.content = {};
    for (const [k, r] of Object.entries(contentRows)) {
        const row = (cIns.data || []).find((x) => x.platform_content_id === r.platform_content_id);
        S.content[k] = row;
    }
    ok(Object.values(S.content).every((r) => r && r.user_id === S.userA.id && r.visibility === 'public'),
        'content rows are A\'s and public', cIns.data);
    isDeeply(S.content.tags && S.content.tags.tags, ['cooking', 'recipe'], 'tags come back as a JSON array');

    // A second, private handle with content, and a third one without content.
    const h2 = await supabase.from('account_handles')
        .insert({ platform_id: S.platformId, handle: `secret_${run}`, visibility: 'private' })
        .select().single();
    okResult(h2, 'A inserts a private handle');
    S.handle2 = h2.data;
    need(S.handle2 && S.handle2.id, 'private handle id');
    const c2 = await supabase.from('handle_content')
        .insert({ handle_id: S.handle2.id, platform_id: S.platformId, platform_content_id: `private-${run}`,
            title: 'Unreleased draft', description: 'private', tags: [] })
        .select().single();
    okResult(c2, 'A inserts content on the private handle');
    S.privateContent = c2.data;

    const h3 = await supabase.from('account_handles')
        .insert({ platform_id: S.platformId, handle: `empty_${run}` })
        .select('id,handle').single();
    okResult(h3, "insert().select('id,handle').single()");
    isDeeply(h3.data && Object.keys(h3.data).sort(), ['handle', 'id'], "select('id,handle') returns only those columns");
    S.handle3 = h3.data;

    const dupH = await supabase.from('account_handles')
        .insert({ platform_id: S.platformId, handle: `chef_${run}` });
    okRefused(dupH, 409, 'inserting the same handle twice is a 409 unique violation');
    is(dupH.error && dupH.error.code, '23505', 'duplicate handle: code 23505');
});

// ---------------------------------------------------------------------
// 3. The document's search
// ---------------------------------------------------------------------
await step('3. full-text search', async () => {
    need(S.content && S.content.title, 'content rows');
    // Verbatim from the document.
    const { data, error } = await supabase
        .from('handle_content')
        .select('*')
        .textSearch('search_vector', 'cooking & recipe', {
            config: 'english',
        });
    ok(!error, "textSearch('search_vector', 'cooking & recipe', {config: 'english'}) succeeds", error);
    isDeeply(ids(data), ids([S.content.title, S.content.desc, S.content.tags]),
        'textSearch returns exactly the three rows with both words (title, description, tags) and not the one with only "cooking"');

    const anonRes = await anon.from('handle_content').select('id,title')
        .textSearch('search_vector', 'cooking & recipe', { config: 'english' });
    okResult(anonRes, 'textSearch as anon succeeds');
    isDeeply(ids(anonRes.data), ids([S.content.title, S.content.desc, S.content.tags]),
        'anon finds the same public rows');

    const web = await supabase.from('handle_content').select('id')
        .textSearch('search_vector', 'cooking -recipe', { config: 'english', type: 'websearch' });
    okResult(web, "textSearch(..., {type: 'websearch'}) succeeds");
    isDeeply(ids(web.data), ids([S.content.nomatch]), 'websearch "cooking -recipe" finds only the row without "recipe"');

    // The ranking rpc (sql/009_search.sql): title match above description above tags.
    const ranked = await supabase.rpc('search_content', { query: 'cooking & recipe' });
    okResult(ranked, "rpc('search_content', {query: 'cooking & recipe'}) succeeds");
    const order = Array.isArray(ranked.data) ? ranked.data.map((r) => r.id) : ranked.data;
    isDeeply(order, [S.content.title.id, S.content.desc.id, S.content.tags.id],
        'search_content ranks the title match first, then description, then tags');
    const first = Array.isArray(ranked.data) && ranked.data[0];
    ok(first && Object.values(first).some((v) => typeof v === 'string' && /<b>|<mark>|\*\*/.test(v) && /cook/i.test(v)),
        'search_content returns a highlighted snippet', first);

    // .single() on the rpc: PostgREST's object, or PGRST116 for several rows.
    const single = await supabase.rpc('search_content', { query: 'cooking -recipe' }).single();
    okResult(single, "rpc('search_content', {query: 'cooking -recipe'}).single() succeeds");
    is(single.data && !Array.isArray(single.data) ? single.data.id : single.data, S.content.nomatch.id,
        '.single() gives the one match as an object');
    const several = await supabase.rpc('search_content', { query: 'cooking & recipe' }).single();
    isDeeply([several.status, several.error && several.error.code, several.error && several.error.details],
        [406, 'PGRST116', 'The result contains 3 rows'], '.single() with three matches: 406 PGRST116');
});

// ---------------------------------------------------------------------
// 4. The document's updateContent(): the server records the history
// ---------------------------------------------------------------------
await step('4. updateContent() and content_edit_history', async () => {
    const contentId = need(S.content && S.content.title && S.content.title.id, 'content id');
    const updates = {
        title: 'Quick cooking recipe for pasta (2025 edition)',
        description: contentRows.title.description,      // unchanged
        tags: ['food', 'easy'],
    };
    // updateContent(contentId, updates), as in the document, minus its
    // manual history insert (asserted below to be refused).
    const { data: oldContent, error: readErr } = await supabase
        .from('handle_content')
        .select('*')
        .eq('id', contentId)
        .single();
    ok(!readErr && oldContent && oldContent.id === contentId, ".select('*').eq('id', contentId).single() returns the row", { readErr, oldContent });
    const upd = await supabase
        .from('handle_content')
        .update(updates)
        .eq('id', contentId);
    okResult(upd, ".update(updates).eq('id', contentId) succeeds");
    is(upd.status, 204, 'update without select answers 204 (return=minimal)');

    const { data: after } = await supabase.from('handle_content').select('title,description,tags').eq('id', contentId).single();
    isDeeply(after, { title: updates.title, description: updates.description, tags: updates.tags }, 'the row has the new values');

    const hist = await supabase.from('content_edit_history').select('*').eq('content_id', contentId);
    okResult(hist, "from('content_edit_history').select('*').eq('content_id', contentId)");
    const rows = Array.isArray(hist.data) ? hist.data : [];
    isDeeply(rows.map((r) => r.field_name).sort(), ['tags', 'title'], 'history has one row for each changed field (title, tags), none for the unchanged description');
    ok(rows.length > 0 && rows.every((r) => r.changed_by === 'user' && r.user_id === S.userA.id && r.content_id === contentId),
        "every history row: changed_by 'user', A's user_id, the content id", rows);
    const t = rows.find((r) => r.field_name === 'title');
    isDeeply(t && [t.old_value, t.new_value], [oldContent && oldContent.title, updates.title], 'title row: old and new value');
    const g = rows.find((r) => r.field_name === 'tags');
    let tagPair;
    try { tagPair = g && [JSON.parse(g.old_value), JSON.parse(g.new_value)]; } catch { tagPair = g && [g.old_value, g.new_value]; }
    isDeeply(tagPair, [['food'], ['food', 'easy']], 'tags row: old and new value as JSON arrays');

    // The document's manual insert: clients may not write history.
    const manual = await supabase.from('content_edit_history').insert({
        content_id: contentId,
        user_id: S.userA.id,
        field_name: 'title',
        old_value: 'forged',
        new_value: 'forged too',
        changed_by: 'user',
    });
    okRefused(manual, 403, "the document's manual insert into content_edit_history is refused (403)");
    is(manual.error && manual.error.code, '42501', 'refused with 42501 (insufficient privilege)');
    const again = await supabase.from('content_edit_history').select('id').eq('content_id', contentId);
    is(Array.isArray(again.data) ? again.data.length : again.data, 2, 'still exactly two history rows');

    const ro = await supabase.from('handle_content').update({ view_count: 1000000 }).eq('id', contentId);
    okRefused(ro, undefined, 'A cannot set the server-maintained view_count');
});

// ---------------------------------------------------------------------
// 5. Quota functions
// ---------------------------------------------------------------------
await step('5. check_quota / increment_quota', async () => {
    const userId = need(S.userA && S.userA.id, 'user A');
    // As in the document's Edge Function snippet.
    const { data: hasQuota, error } = await supabase.rpc('check_quota', {
        _user_id: userId,
        _quota_type: 'syncs',
        _amount: 1,
    });
    ok(!error, "rpc('check_quota', {_user_id: A, _quota_type: 'syncs', _amount: 1}) as A succeeds", error);
    is(hasQuota, true, 'check_quota(A) is true for a new free-tier user');

    const tooMuch = await supabase.rpc('check_quota', { _user_id: userId, _quota_type: 'syncs', _amount: 100000 });
    is(tooMuch.data, false, 'check_quota(A, syncs, 100000) is false');

    const other = await supabase.rpc('check_quota', { _user_id: need(S.userB && S.userB.id, 'user B'), _quota_type: 'syncs', _amount: 1 });
    okRefused(other, 403, "check_quota for B's id as A is refused (403)");
    ok(other.data !== true && other.data !== false, 'and does not reveal B\'s quota', other.data);

    const inc = await supabase.rpc('increment_quota', { _user_id: userId, _quota_type: 'syncs', _amount: 1 });
    okRefused(inc, 403, 'increment_quota as a user is refused (403)');

    const anonInc = await anon.rpc('increment_quota', { _user_id: userId, _quota_type: 'syncs', _amount: 1 });
    okRefused(anonInc, 401, 'increment_quota as anon is refused (401)');

    const svc = await service.rpc('increment_quota', { _user_id: userId, _quota_type: 'syncs', _amount: 1 });
    okResult(svc, 'increment_quota with the service key succeeds');
    is(svc.data, true, 'increment_quota with the service key returns true');

    const settings = await supabase.from('subscription_settings').select('*').single();
    okResult(settings, "A reads own subscription_settings (.single())");
    is(settings.data && settings.data.tier, 'free', 'A is on the free tier');
    is(settings.data && settings.data.current_syncs_count, 1, 'current_syncs_count is 1 after one increment');

    const hist = await supabase.from('quota_usage_history').select('*').eq('quota_type', 'syncs');
    okResult(hist, 'A reads own quota_usage_history');
    ok(Array.isArray(hist.data) && hist.data.length === 1 && hist.data[0].amount === 1 && hist.data[0].user_id === userId,
        'one syncs spend of 1 in the history', hist.data);
});

// ---------------------------------------------------------------------
// 6. Handle "deletion" is unlisting
// ---------------------------------------------------------------------
await step('6. deleting a handle with content is refused; unlisting hides it', async () => {
    const handleId = need(S.handle && S.handle.id, 'handle id');

    const before = await anon.from('handle_content').select('id').eq('handle_id', handleId);
    okResult(before, 'anon reads the public handle\'s content');
    is(Array.isArray(before.data) ? before.data.length : before.data, 4, 'anon sees all four public content rows before unlisting');
    const anonHandle = await anon.from('account_handles').select('id,handle').eq('id', handleId);
    is(Array.isArray(anonHandle.data) ? anonHandle.data.length : anonHandle.data, 1, 'anon sees the public handle');
    const anonPrivate = await anon.from('handle_content').select('id').eq('handle_id', need(S.handle2 && S.handle2.id, 'private handle'));
    isDeeply(anonPrivate.data, [], 'anon does not see content of a private handle');

    const del = await supabase.from('account_handles').delete().eq('id', handleId);
    okRefused(del, 409, "from('account_handles').delete().eq('id', handleId) is refused with 409");
    ok(del.error && /unlisted/.test(del.error.message || ''), "the error message says to set visibility 'unlisted'", del.error);

    const still = await supabase.from('handle_content').select('id').eq('handle_id', handleId);
    is(Array.isArray(still.data) ? still.data.length : still.data, 4, 'all four content rows are still there');
    const stillH = await supabase.from('account_handles').select('id').eq('id', handleId);
    is(Array.isArray(stillH.data) ? stillH.data.length : stillH.data, 1, 'the handle is still there');

    if (S.handle3 && S.handle3.id) {
        const del3 = await supabase.from('account_handles').delete().eq('id', S.handle3.id).select();
        okResult(del3, 'deleting a handle without content works');
        isDeeply(ids(del3.data), [S.handle3.id], 'delete().select() returns the deleted handle');
    } else {
        ok(false, 'deleting a handle without content works (no third handle from step 2)');
    }

    // The document's "Handle Visibility" tip.
    const unl = await supabase.from('account_handles')
        .update({ visibility: 'unlisted', active_status: 'inactive' })
        .eq('id', handleId)
        .select()
        .single();
    okResult(unl, "update({visibility: 'unlisted', active_status: 'inactive'}).eq('id', handleId) works");
    isDeeply(unl.data && [unl.data.visibility, unl.data.active_status], ['unlisted', 'inactive'], 'the handle is unlisted and inactive');

    const after = await anon.from('handle_content').select('id').eq('handle_id', handleId);
    okResult(after, 'anon reads after unlisting');
    isDeeply(after.data, [], 'anon no longer sees the unlisted handle\'s content');
    const afterSearch = await anon.from('handle_content').select('id')
        .textSearch('search_vector', 'cooking & recipe', { config: 'english' });
    isDeeply(afterSearch.data, [], 'nor finds it by search');
    const afterH = await anon.from('account_handles').select('id').eq('id', handleId);
    isDeeply(afterH.data, [], 'nor sees the handle');
    const owner = await supabase.from('handle_content').select('id').eq('handle_id', handleId);
    is(Array.isArray(owner.data) ? owner.data.length : owner.data, 4, 'A still sees all four rows');
});

// ---------------------------------------------------------------------
// 7. Isolation between users
// ---------------------------------------------------------------------
await step('7. B cannot see or change A\'s rows', async () => {
    const h1 = need(S.handle && S.handle.id, 'handle id');
    const h2 = need(S.handle2 && S.handle2.id, 'private handle id');
    const c1 = need(S.content && S.content.desc && S.content.desc.id, 'content id');

    const bh = await supabaseB.from('account_handles').select('*').in('id', [h1, h2]);
    okResult(bh, "B: from('account_handles').select('*').in('id', [A's handles])");
    isDeeply(bh.data, [], 'B sees none of A\'s (unlisted, private) handles');
    const bAll = await supabaseB.from('account_handles').select('*');
    isDeeply(bAll.data, [], 'B lists no handles at all');
    const bc = await supabaseB.from('handle_content').select('*').eq('user_id', S.userA.id);
    okResult(bc, 'B selects content by A\'s user_id');
    isDeeply(bc.data, [], 'B sees none of A\'s content');
    const bhist = await supabaseB.from('content_edit_history').select('*');
    isDeeply(bhist.data, [], 'B sees no edit history');

    const bu = await supabaseB.from('handle_content').update({ title: 'pwned' }).eq('id', c1).select();
    ok(bu.error || (Array.isArray(bu.data) && bu.data.length === 0), 'B updating A\'s content changes no row', bu);
    const bhu = await supabaseB.from('account_handles').update({ display_name: 'pwned', visibility: 'public' }).eq('id', h2).select();
    ok(bhu.error || (Array.isArray(bhu.data) && bhu.data.length === 0), 'B updating A\'s handle changes no row', bhu);
    const bd = await supabaseB.from('account_handles').delete().eq('id', h2).select();
    ok(bd.error || (Array.isArray(bd.data) && bd.data.length === 0), 'B deleting A\'s handle deletes nothing', bd);

    const aC = await supabase.from('handle_content').select('title').eq('id', c1).single();
    is(aC.data && aC.data.title, contentRows.desc.title, 'A re-reads the content: title unchanged');
    const aH = await supabase.from('account_handles').select('display_name,visibility').eq('id', h2).single();
    isDeeply(aH.data, { display_name: null, visibility: 'private' }, 'A re-reads the private handle: unchanged and still there');

    const bSingle = await supabaseB.from('handle_content').select('*').eq('id', c1).single();
    okRefused(bSingle, 406, "B: the document's .select('*').eq('id', contentId).single() on A's content is 406");
    is(bSingle.error && bSingle.error.code, 'PGRST116', '.single() with no visible row: PGRST116');

    const forged = await supabaseB.from('account_handles')
        .insert({ platform_id: S.platformId, handle: `forged_${run}`, user_id: S.userA.id });
    okRefused(forged, 403, 'B inserting a handle with user_id = A is refused (403)');
    const forgedC = await supabaseB.from('handle_content')
        .insert({ handle_id: h1, platform_id: S.platformId, platform_content_id: `forged-${run}`, title: 'x' });
    okRefused(forgedC, undefined, 'B inserting content into A\'s handle is refused');
    const aCount = await supabase.from('handle_content').select('id').eq('handle_id', h1);
    is(Array.isArray(aCount.data) ? aCount.data.length : aCount.data, 4, 'A\'s handle still has four content rows');
});

// ---------------------------------------------------------------------
// 8. audit_log: written by Edge Functions (service role), read by owners
// ---------------------------------------------------------------------
await step('8. audit_log', async () => {
    const userId = need(S.userA && S.userA.id, 'user A');
    const handleId = need(S.handle && S.handle.id, 'handle id');
    const startTime = new Date(Date.now() - 1500);
    const result = { synced: 4 };
    // The document's sync-platform Edge Function, success path...
    const okIns = await service.from('audit_log').insert({
        user_id: userId,
        action: 'platform_sync',
        resource_type: 'account_handle',
        resource_id: handleId,
        job_type: 'platform_sync',
        job_status: 'completed',
        job_payload: { handleId },
        job_result: result,
        job_started_at: startTime,
        job_completed_at: new Date(),
    }).select().single();
    okResult(okIns, "service role: from('audit_log').insert({... job columns ...}) works");
    ok(okIns.data && okIns.data.job_duration_ms >= 1000 && okIns.data.job_duration_ms < 600000,
        'job_duration_ms is filled from the start and end times', okIns.data);
    isDeeply(okIns.data && okIns.data.job_result, result, 'job_result round-trips as JSON');
    // ...and failure path (no action).
    const failIns = await service.from('audit_log').insert({
        user_id: userId,
        job_type: 'platform_sync',
        job_status: 'failed',
        job_error: 'platform API returned 500',
        job_started_at: startTime,
        job_completed_at: new Date(),
    });
    okResult(failIns, 'service role: the failure-path insert works');
    is(failIns.status, 201, 'failure-path insert answers 201');
    const bIns = await service.from('audit_log').insert({
        user_id: need(S.userB && S.userB.id, 'user B'), action: 'login',
    });
    okResult(bIns, 'service role: an audit row for B');

    const userIns = await supabase.from('audit_log').insert({
        user_id: userId,
        action: 'platform_sync',
        job_type: 'platform_sync',
        job_status: 'completed',
        job_started_at: startTime,
        job_completed_at: new Date(),
    });
    okRefused(userIns, 403, 'as user A the same insert is refused (403)');

    const mine = await supabase.from('audit_log').select('*').order('id', { ascending: true });
    okResult(mine, "A: from('audit_log').select('*')");
    ok(Array.isArray(mine.data) && mine.data.length === 2 && mine.data.every((r) => r.user_id === userId),
        'A reads exactly its own two rows', mine.data);
    isDeeply(Array.isArray(mine.data) ? mine.data.map((r) => r.job_status) : mine.data, ['completed', 'failed'],
        'A\'s rows: completed, failed');
    const theirs = await supabaseB.from('audit_log').select('user_id,action');
    isDeeply(theirs.data, [{ user_id: S.userB.id, action: 'login' }], 'B reads only its own row');
    const anonLog = await anon.from('audit_log').select('*');
    ok(anonLog.error || (Array.isArray(anonLog.data) && anonLog.data.length === 0), 'anon reads no audit rows', anonLog);
});

// ---------------------------------------------------------------------
// 8b. The document's Vault snippet stores platform tokens from the client.
// Here the server encrypts tokens itself (/functions/v1/credentials, OAuth),
// so the same calls must be refused and no token column is readable.
// ---------------------------------------------------------------------
await step('8b. platform_credentials is not writable or readable by clients', async () => {
    const userId = need(S.userA && S.userA.id, 'user A');
    const vault = await supabase.rpc('vault.create_secret', { secret: 'ya29.secret-token', name: `platform_token_${userId}` });
    okRefused(vault, undefined, "rpc('vault.create_secret', ...) is refused");
    const ins = await supabase.from('platform_credentials').insert({
        user_id: userId,
        platform_id: need(S.platformId, 'platform id'),
        encrypted_access_token: 'ya29.secret-token',
        token_expires_at: new Date(Date.now() + 3600e3),
        scopes: ['read', 'write'],
    });
    okRefused(ins, undefined, "the document's from('platform_credentials').insert({...}) is refused");
    const sel = await supabase.from('platform_credentials').select('*');
    ok(sel.error || (Array.isArray(sel.data) && sel.data.length === 0),
        "from('platform_credentials').select('*') returns no token rows", sel);
    const conn = await supabase.from('platform_connections').select('*');
    okResult(conn, "from('platform_connections').select('*') (the non-secret view) works");
    isDeeply(conn.data, [], 'A has no platform connections');
});

// ---------------------------------------------------------------------
// 8c. The document's Vault snippet, as written, from server-side code
// holding the service role key (an Edge Function): the secret is sealed
// by the server, the row references it by id, get_secret reads it back;
// users cannot.
// ---------------------------------------------------------------------
await step("8c. the document's Vault calls with the service key", async () => {
    const userId = need(S.userA && S.userA.id, 'user A');
    const platformId = need(S.platformId, 'platform id');
    const accessToken = `ya29.seed-${Math.random().toString(36).slice(2)}`;
    const created = await service.rpc('vault.create_secret', {
        secret: accessToken,
        name: `platform_token_${userId}_${platformId}`,
    });
    okResult(created, "service.rpc('vault.create_secret', {secret, name})");
    const data = created.data;
    ok(data && typeof data.id === 'string', 'data.id is the new secret\'s id', data);
    const ins = await service.from('platform_credentials').insert({
        user_id: userId,
        platform_id: platformId,
        encrypted_access_token: need(data && data.id, 'secret id'),
        token_expires_at: new Date(Date.now() + 3600e3),
        scopes: ['read', 'write'],
    });
    okResult(ins, "service.from('platform_credentials').insert({... encrypted_access_token: data.id ...})");
    const credentials = await service.from('platform_credentials').select('encrypted_access_token')
        .eq('user_id', userId).single();
    okResult(credentials, 'the service role reads the row back');
    const { data: secret } = await service.rpc('vault.get_secret', {
        secret_id: need(credentials.data, 'credentials row').encrypted_access_token,
    });
    is(secret, accessToken, "service.rpc('vault.get_secret', {secret_id}) returns the token");
    const denied = await supabase.rpc('vault.get_secret', { secret_id: data.id });
    okRefused(denied, 403, 'user A cannot call vault.get_secret (403)');
    ok(!JSON.stringify(denied.data || '').includes(accessToken), 'and gets nothing of the secret');
    const conn = await supabase.from('platform_connections').select('platform, scopes');
    okResult(conn, 'A sees the connection in platform_connections');
    isDeeply(conn.data, [{ platform: 'youtube', scopes: ['read', 'write'] }],
        'one connection, with its scopes');
    const del = await supabase.from('platform_credentials').delete().eq('user_id', userId);
    okResult(del, 'A disconnects it');
});

// ---------------------------------------------------------------------
// 8d. The seed's sync: functions.invoke('sync-platform', {body:{handleId}})
// against a fake YouTube the test started (its token is SV_YOUTUBE_TOKEN),
// then the synced content and the job's audit row read as the user.
// ---------------------------------------------------------------------
await step("8d. functions.invoke('sync-platform') and the synced content", async () => {
    const token = need(process.env.SV_YOUTUBE_TOKEN, 'SV_YOUTUBE_TOKEN');
    const expected = JSON.parse(need(process.env.SV_YOUTUBE_TITLES, 'SV_YOUTUBE_TITLES'));
    need(S.userA && S.platformId, 'user A and the youtube platform');
    const cred = await supabase.functions.invoke('credentials', {
        body: { platform: 'youtube', access_token: token, expires_in: 3600 },
    });
    ok(!cred.error, "functions.invoke('credentials', {body:{platform, access_token}}) stores A's token", cred.error);
    const h = await supabase.from('account_handles')
        .insert({ platform_id: S.platformId, handle: `synced_${run}` }).select().single();
    okResult(h, 'A adds the handle to sync');
    const handleId = need(h.data && h.data.id, 'handle id');

    const inv = await supabase.functions.invoke('sync-platform', { body: { handleId, userId: S.userA.id } });
    ok(!inv.error && inv.data && inv.data.status === 'running' && inv.data.job_id,
        "functions.invoke('sync-platform', {body:{handleId}}) answers {job_id, status:'running'}", inv);
    const jobId = need(inv.data && inv.data.job_id, 'job id');
    const done = await supabase.functions.invoke(`jobs/${jobId}?wait=40`, { method: 'GET' });
    ok(!done.error && done.data && done.data.status === 'completed', 'the job completed (GET jobs/<id>?wait)', done);
    is(done.data && done.data.result && done.data.result.new, expected.length, 'its result counts the new items');

    const rows = await supabase.from('handle_content').select('platform_content_id,title,user_id')
        .eq('handle_id', handleId).order('platform_content_id');
    okResult(rows, 'A reads the synced content');
    isDeeply((rows.data || []).map((r) => r.title).sort(), [...expected].sort(), 'the titles are the platform\'s');
    ok((rows.data || []).every((r) => r.user_id === S.userA.id), 'the rows are A\'s');
    const audit = await supabase.from('audit_log').select('job_status,job_type,job_result').eq('job_id', jobId);
    okResult(audit, 'A reads the job\'s audit row');
    is(audit.data && audit.data.length, 1, 'exactly one audit row');
    is(audit.data && audit.data[0] && audit.data[0].job_status, 'completed', 'completed');
    is(audit.data && audit.data[0] && audit.data[0].job_type, 'platform_sync', 'a platform_sync');
    const { data: hs } = await supabase.from('account_handles').select('sync_status,last_synced_at').eq('id', handleId).single();
    ok(hs && hs.sync_status === 'ok' && hs.last_synced_at, 'the handle says when it was synced', hs);
});

// ---------------------------------------------------------------------
// 8e. Beyond the document: what hosted Supabase answers to common slips.
// An update or delete without a filter (pg-safeupdate on Supabase).
// ---------------------------------------------------------------------
await step('8e. a forgotten filter is refused, as on Supabase', async () => {
    need(S.userA, 'user A');
    const snapshot = async () => {
        const r = await service.from('handle_content').select('id,title,deleted_at').order('id');
        return r.data;
    };
    const before = await snapshot();
    ok(Array.isArray(before) && before.length > 0, 'there are rows to protect', before);
    const safe = (verb) => ({ code: '21000', details: null, hint: null, message: `${verb} requires a WHERE clause` });
    const upd = await supabase.from('handle_content').update({ title: 'z' });
    okRefused(upd, 400, "from('handle_content').update({title: 'z'}) without a filter: 400");
    isDeeply(upd.error && { ...upd.error }, safe('UPDATE'), "the error is pg-safeupdate's 21000");
    const supd = await service.from('handle_content').update({ title: 'z' }).select('id');
    okRefused(supd, 400, 'the same with the service key: 400');
    const del = await supabase.from('handle_content').delete();
    okRefused(del, 400, 'delete() without a filter: 400');
    isDeeply(del.error && { ...del.error }, safe('DELETE'), 'DELETE requires a WHERE clause');
    const sdel = await service.from('account_handles').delete();
    okRefused(sdel, 400, 'delete() with the service key: 400');
    isDeeply(await snapshot(), before, 'no row changed');
    const one = before[0];
    const fil = await service.from('handle_content').update({ title: one.title }).eq('id', one.id).select('id');
    okResult(fil, 'with .eq() the update runs');
    isDeeply(fil.data, [{ id: one.id }], 'on the one row');
});

// ---------------------------------------------------------------------
// 8f. .schema('x'): only public is exposed (Accept-Profile on reads,
// Content-Profile on writes); any other schema is PostgREST's 406.
// ---------------------------------------------------------------------
await step("8f. .schema('x') other than public is refused (PGRST106)", async () => {
    need(S.userA, 'user A');
    const pgrst106 = { code: 'PGRST106', details: null, hint: null,
        message: 'The schema must be one of the following: public' };
    const users = await supabase.schema('auth').from('users').select('id');
    okRefused(users, 406, ".schema('auth').from('users').select() is 406");
    isDeeply(users.error && { ...users.error }, pgrst106, "PostgREST's PGRST106");
    const priv = await supabase.schema('private').from('handle_content').select('id');
    okRefused(priv, 406, ".schema('private').from('handle_content') is 406, not public's table");
    const before = await supabase.from('handle_content').select('id,title').order('id');
    const upd = await supabase.schema('private').from('handle_content').update({ title: 'z' }).neq('title', 'z');
    okRefused(upd, 406, ".schema('private')...update() is 406");
    const after = await supabase.from('handle_content').select('id,title').order('id');
    isDeeply(after.data, before.data, 'and changed nothing');
    const pub = await supabase.schema('public').from('handle_content').select('id').order('id');
    okResult(pub, ".schema('public') works");
    isDeeply(pub.data, (before.data || []).map((r) => ({ id: r.id })), 'the same rows');
    const made = await service.schema('vault').rpc('vault.create_secret', { secret: `schema-vault-${run}` });
    okResult(made, ".schema('vault').rpc('vault.create_secret') works (Content-Profile: vault)");
    const sec = await service.schema('vault').rpc('vault.get_secret', { secret_id: made.data && made.data.id });
    is(sec.data, `schema-vault-${run}`, ".schema('vault').rpc('vault.get_secret') returns it");
});

// ---------------------------------------------------------------------
// 8g. postgrest-js's likeAnyOf/likeAllOf/ilikeAnyOf/ilikeAllOf send
// col=like(any).{a*,b*} (PostgREST's operator modifiers); the expected
// rows are worked out here from a plain read, with LIKE's '*' as '.*'.
// ---------------------------------------------------------------------
await step('8g. likeAnyOf / likeAllOf / ilikeAnyOf / ilikeAllOf', async () => {
    need(S.userA, 'user A');
    const all = await supabase.from('handle_content').select('platform_content_id');
    okResult(all, "A's content ids");
    const pcids = (all.data || []).map((r) => r.platform_content_id).sort();
    const esc = (t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const likeRe = (pat, ci) => new RegExp(`^${pat.split('*').map(esc).join('.*')}$`, ci ? 'i' : '');
    const expect = (pats, any, ci) => pcids.filter((id) => pats[any ? 'some' : 'every']((p) => likeRe(p, ci).test(id)));
    const ids = (r) => (r.data || []).map((x) => x.platform_content_id).sort();
    const cases = [
        ['likeAnyOf', [`title-${run}`, 'tags-*'], true, false],
        ['likeAllOf', ['*-*', `*${run}`, 'd*'], false, false],
        ['ilikeAnyOf', [`TITLE-${run}`, 'NOMATCH-*'], true, true],
        ['ilikeAllOf', ['*E*', `*${run.toUpperCase()}`], false, true],
    ];
    for (const [fn, pats, any, ci] of cases) {
        const r = await supabase.from('handle_content').select('platform_content_id')[fn]('platform_content_id', pats);
        okResult(r, `${fn}('platform_content_id', ${JSON.stringify(pats)})`);
        const want = expect(pats, any, ci);
        ok(want.length > 0 && want.length < pcids.length, `${fn}: some rows and not all are expected`, { want, pcids });
        isDeeply(ids(r), want, `${fn}: the rows of ${ci ? 'ILIKE' : 'LIKE'} ${any ? 'ANY' : 'ALL'}`);
    }
    const two = [`title-${run}`, `desc-${run}`].filter((x) => pcids.includes(x)).sort();
    const eqAny = await supabase.from('handle_content').select('platform_content_id')
        .filter('platform_content_id', 'eq(any)', `{${two.join(',')}}`);
    isDeeply(ids(eqAny), two, ".filter(col, 'eq(any)', '{a,b}')");
    const notAny = await supabase.from('handle_content').select('platform_content_id')
        .not('platform_content_id', 'like(any)', '{title-*,desc-*}');
    isDeeply(ids(notAny), pcids.filter((x) => !/^(title|desc)-/.test(x)), ".not(col, 'like(any)', '{a*,b*}')");
    const inOr = await supabase.from('handle_content').select('platform_content_id')
        .or(`platform_content_id.like(any).{title-*,tags-*},platform_content_id.eq.desc-${run}`);
    isDeeply(ids(inOr), pcids.filter((x) => /^(title|tags)-/.test(x) || x === `desc-${run}`), '.or() with a like(any) list');
});

// ---------------------------------------------------------------------
// 8h. postgrest-js's stripNulls() sends
// Accept: application/vnd.pgrst.array+json;nulls=stripped (with .single(),
// the object type): PostgREST leaves out every member whose value is null.
// ---------------------------------------------------------------------
await step('8h. stripNulls()', async () => {
    const contentId = need(S.content && S.content.title && S.content.title.id, 'content id');
    const cols = 'id,title,description,content_url,thumbnail_url,published_at,duration_seconds,view_count';
    const withoutNulls = (row) => Object.fromEntries(Object.entries(row).filter(([, v]) => v !== null));
    const plain = await supabase.from('handle_content').select(cols).order('platform_content_id');
    okResult(plain, "A's content with its nulls");
    const rows = plain.data || [];
    ok(rows.length > 1 && rows.some((r) => Object.values(r).includes(null)), 'some rows have null columns', rows);
    const theOne = rows.find((r) => r.id === contentId);
    ok(theOne && Object.values(theOne).includes(null), 'so has the row read alone below', theOne);
    const stripped = await supabase.from('handle_content').select(cols).order('platform_content_id').stripNulls();
    okResult(stripped, "select(...).stripNulls()");
    isDeeply(stripped.data, rows.map(withoutNulls), 'the same rows without their null members');
    const one = await supabase.from('handle_content').select(cols).eq('id', contentId).single().stripNulls();
    okResult(one, '.single().stripNulls()');
    isDeeply(one.data, theOne && withoutNulls(theOne), 'the one row without its null members');
});

// ---------------------------------------------------------------------
// 9. updateUser, refreshSession, signOut
// ---------------------------------------------------------------------
await step('9. updateUser / refreshSession / signOut', async () => {
    need(S.userA, 'user A');
    if (S.fallbackA) throw new Error('prerequisite missing: A has no session from /auth/v1 (step 1)');
    const upd = await supabase.auth.updateUser({ password: passwordA2 });
    okResult(upd, 'auth.updateUser({password}) succeeds');
    is(upd.data && upd.data.user && upd.data.user.id, S.userA.id, 'updateUser returns A');

    const probe = newClient(ANON_KEY);
    const oldPw = await probe.auth.signInWithPassword({ email: emailA, password: passwordA });
    okRefused(oldPw, 400, 'the old password no longer signs in (400)');
    const newPw = await probe.auth.signInWithPassword({ email: emailA, password: passwordA2 });
    okResult(newPw, 'the new password signs in');
    await probe.auth.signOut({ scope: 'local' });

    const { data: cur } = await supabase.auth.getSession();
    const before = cur && cur.session;
    need(before && before.refresh_token, 'A\'s current session');
    const ref = await supabase.auth.refreshSession();
    okResult(ref, 'refreshSession() succeeds');
    const after = ref.data && ref.data.session;
    ok(after && after.access_token && after.refresh_token && after.refresh_token !== before.refresh_token,
        'refreshSession() returns a new session with a rotated refresh token', after);
    is(ref.data && ref.data.user && ref.data.user.id, S.userA.id, 'refreshSession(): same user');
    const me = await supabase.auth.getUser();
    is(me.data && me.data.user && me.data.user.id, S.userA.id, 'getUser() works with the refreshed token');
    const sub = await supabase.from('subscription_settings').select('user_id');
    isDeeply(sub.data, [{ user_id: S.userA.id }], 'the refreshed token reads A\'s own rows');

    const accessToken = after && after.access_token;
    const refreshToken = after && after.refresh_token;
    const out = await supabase.auth.signOut();
    ok(!out.error, 'signOut() succeeds', out.error);
    const logoutX = exchanges.find((x) => x.method === 'POST' && /\/auth\/v1\/logout/.test(x.url));
    ok(logoutX && logoutX.status === 204, 'POST /auth/v1/logout answered 204', logoutX && { status: logoutX.status, body: logoutX.resBody });

    const gone = await supabase.auth.getUser();
    ok(gone.error && !(gone.data && gone.data.user), 'getUser() fails after signOut()', gone);
    const revoked = await anon.auth.getUser(accessToken);
    ok(revoked.error && !(revoked.data && revoked.data.user),
        'the signed-out session\'s access token is refused by GET /auth/v1/user (session revoked)', revoked);
    const reuse = newClient(ANON_KEY);
    const r2 = await reuse.auth.refreshSession({ refresh_token: refreshToken });
    ok(r2.error && !(r2.data && r2.data.session), 'the signed-out session\'s refresh token no longer refreshes', r2);
    const asAnon = await supabase.from('subscription_settings').select('user_id');
    ok(asAnon.error || (Array.isArray(asAnon.data) && asAnon.data.length === 0),
        'after signOut() the client is anon again and reads no subscription row', asAnon);
});

console.log(`1..${testNo}`);
clearTimeout(watchdog);
process.exit(failed ? 1 : 0);
