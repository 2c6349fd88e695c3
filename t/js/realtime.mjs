// supabase-js Realtime against a StreamVibe server: the V2 document's job
// tracking subscription verbatim, then what its users rely on around it
// (row-level security, filters, UPDATE/DELETE, anon, token refresh,
// unsubscribe, large rows). Prints TAP on stdout.
//
// Run by t/810-realtime-supabase-js.t with the pinned @supabase/supabase-js
// of t/js/package-lock.json (default serializer, then vsn 1.0.0) and with
// the newest 2.x. By hand:
//
//   SUPABASE_URL=http://127.0.0.1:8080 SUPABASE_ANON_KEY=... SUPABASE_SERVICE_KEY=... \
//   SV_PG_CONNINFO='host=... dbname=streamvibe user=postgres' \
//   node --experimental-websocket realtime.mjs
//
// SV_RT_VSN=1.0.0 selects Phoenix's JSON-object serializer. SV_PG_CONNINFO
// is only used for a hard DELETE (the API's DELETE of content is a soft
// delete), through psql.

import { createClient } from '@supabase/supabase-js';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

const URL_ = process.env.SUPABASE_URL;
const ANON_KEY = process.env.SUPABASE_ANON_KEY;
const SERVICE_KEY = process.env.SUPABASE_SERVICE_KEY;
const PG = process.env.SV_PG_CONNINFO;
const PSQL = process.env.SV_PSQL || 'psql';
const VSN = process.env.SV_RT_VSN || '';
const WATCHDOG_MS = Number(process.env.SV_JS_TIMEOUT_MS || 120000);

if (!URL_ || !ANON_KEY || !SERVICE_KEY || !PG) {
    console.log('1..0 # SKIP SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_KEY and SV_PG_CONNINFO must be set');
    process.exit(1);
}

let testNo = 0;
let failed = 0;
function diag(text) {
    for (const line of String(text).split('\n')) console.log(`# ${line}`);
}
function ok(cond, name, extra) {
    testNo += 1;
    const clean = String(name).replace(/#/g, '\\#').replace(/\n/g, ' ');
    console.log(`${cond ? '' : 'not '}ok ${testNo} - ${clean}`);
    if (!cond) {
        failed += 1;
        if (extra !== undefined) diag(typeof extra === 'string' ? extra : JSON.stringify(extra, null, 2));
    }
    return !!cond;
}
function is(got, want, name) {
    return ok(got === want, name, `got: ${JSON.stringify(got)}\nexpected: ${JSON.stringify(want)}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(pred, ms = 5000) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        if (pred()) return true;
        await sleep(10);
    }
    return !!pred();
}
const watchdog = setTimeout(() => {
    ok(false, `watchdog: the script did not finish within ${WATCHDOG_MS} ms`);
    console.log(`1..${testNo}`);
    process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

// Browser-like clients: sessions in memory, no refresh timer (refreshed
// by hand below), the serializer under test.
const options = {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: VSN ? { vsn: VSN } : {},
};
const client = (key) => createClient(URL_, key, options);

// Subscribes and resolves with the final status (SUBSCRIBED or an error).
function subscribed(channel) {
    return new Promise((resolve) => {
        const t = setTimeout(() => resolve('NO ANSWER'), 10000);
        channel.subscribe((status, err) => {
            if (status === 'SUBSCRIBED' || status === 'CHANNEL_ERROR' || status === 'TIMED_OUT' || status === 'CLOSED') {
                clearTimeout(t);
                resolve(err ? `${status}: ${err.message}` : status);
            }
        });
    });
}
// A channel the verbatim code subscribed: joined once its state says so.
const joined = (channel) => waitFor(() => channel.state === 'joined', 10000);

function psql(sql) {
    return execFileSync(PSQL, ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', PG, '-c', sql], { encoding: 'utf8' }).trim();
}

const run = randomBytes(4).toString('hex');
const all = [];   // every client, to disconnect at the end

try {
    diag(`serializer: ${VSN || 'the client default'}`);

    // --- accounts ---------------------------------------------------------
    const supabase = client(ANON_KEY);      // user A's browser
    const supabaseB = client(ANON_KEY);     // user B's browser
    const visitor = client(ANON_KEY);       // never signs in
    const service = client(SERVICE_KEY);    // an Edge Function
    all.push(supabase, supabaseB, visitor, service);
    const upA = await supabase.auth.signUp({ email: `rt-a-${run}@example.com`, password: `Rt-secret-A-${run}` });
    const upB = await supabaseB.auth.signUp({ email: `rt-b-${run}@example.com`, password: `Rt-secret-B-${run}` });
    if (!ok(!upA.error && !upB.error && upA.data.session && upB.data.session, 'users A and B sign up and get sessions', { a: upA.error, b: upB.error })) {
        throw new Error('no users');
    }
    const A = upA.data.user, B = upB.data.user;

    // --- the V2 document's Pro Tip, verbatim -------------------------------
    // Its callback logs with console.log; here console is a recorder, so
    // the code stays exactly as written.
    const jobUpdates = [];
    const spied = [];
    let proTip, spy;
    {
        const console = { log: (label, value) => jobUpdates.push({ label, value, at: Date.now() }) };
        const userId = A.id;
        proTip = supabase
          .channel('job-updates')
          .on('postgres_changes', {
            event: 'INSERT',
            schema: 'public',
            table: 'audit_log',
            filter: `user_id=eq.${userId}`
          }, (payload) => {
            console.log('Job update:', payload.new)
          })
          .subscribe()
    }
    {
        // User B runs the same code with A's id: row-level security, not
        // the filter, decides.
        const console = { log: (label, value) => spied.push(value) };
        const userId = A.id;
        spy = supabaseB
          .channel('job-updates')
          .on('postgres_changes', {
            event: 'INSERT',
            schema: 'public',
            table: 'audit_log',
            filter: `user_id=eq.${userId}`
          }, (payload) => {
            console.log('Job update:', payload.new)
          })
          .subscribe()
    }
    const ownB = [];
    const chB = supabaseB.channel('my-jobs').on('postgres_changes',
        { event: 'INSERT', schema: 'public', table: 'audit_log', filter: `user_id=eq.${B.id}` }, (p) => ownB.push(p));
    const anonJobs = [];
    const chAnonJobs = visitor.channel('all-jobs').on('postgres_changes',
        { event: '*', schema: 'public', table: 'audit_log' }, (p) => anonJobs.push(p));
    ok(await joined(proTip), "A: the Pro Tip's channel('job-updates') joins", proTip.state);
    ok(await joined(spy), "B: the same code with A's user id joins too", spy.state);
    is(await subscribed(chB), 'SUBSCRIBED', "B: a channel on B's own jobs is SUBSCRIBED");
    is(await subscribed(chAnonJobs), 'SUBSCRIBED', 'a visitor (anon) subscribes to every audit_log change');

    // A job ends: its audit row is written with the service role.
    const jobId = crypto.randomUUID();
    const t0 = Date.now();
    const insA = await service.from('audit_log').insert({
        user_id: A.id, action: 'sync', resource_type: 'account_handles', job_id: jobId, job_type: 'platform_sync',
        job_status: 'completed', job_result: { synced: 12 }, details: { platform: 'youtube' },
        job_started_at: new Date(t0 - 5000).toISOString(), job_completed_at: new Date(t0).toISOString(), job_duration_ms: 5000,
    }).select().single();
    ok(!insA.error && insA.data, "service_role writes the job's audit row for A", insA.error);
    const got = await waitFor(() => jobUpdates.length > 0, 3000);
    ok(got, "A's verbatim callback receives the job's audit row");
    // From before the insert request (so the time includes it): the row
    // is committed somewhere in between.
    const latency = got ? jobUpdates[0].at - t0 : -1;
    ok(got && latency < 1000, `... within 1 s of the job's row being written (${latency} ms from the insert request)`);
    const rec = got ? jobUpdates[0].value : {};
    is(jobUpdates[0] && jobUpdates[0].label, 'Job update:', '... through its console.log');
    is(rec.job_id, jobId, 'payload.new.job_id is the job');
    is(rec.user_id, A.id, 'payload.new.user_id is A');
    is(rec.job_status, 'completed', 'payload.new.job_status');
    is(rec.id, insA.data && insA.data.id, 'payload.new.id is the row id (a number)');
    ok(rec.job_result && rec.job_result.synced === 12 && rec.details && rec.details.platform === 'youtube',
        'jsonb columns arrive as objects', rec);

    // B's own job: B's channel gets it, the spy still nothing.
    const insB = await service.from('audit_log').insert({ user_id: B.id, action: 'ai', job_id: crypto.randomUUID(), job_type: 'ai_enhancement', job_status: 'failed', job_error: 'quota' });
    ok(!insB.error, "service_role writes an audit row for B", insB.error);
    ok(await waitFor(() => ownB.length > 0, 3000), "B receives B's own job row (B's socket works)");
    is(ownB[0] && ownB[0].new.job_error, 'quota', "... with B's row");
    is(ownB[0] && ownB[0].eventType, 'INSERT', '... eventType INSERT');
    ok(ownB[0] && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(ownB[0].commit_timestamp), '... commit_timestamp like Supabase\'s', ownB[0]);
    await sleep(500);
    is(spied.length, 0, "B never receives A's audit rows, though B's filter matches them");
    is(jobUpdates.length, 1, "A does not receive B's row");
    is(anonJobs.length, 0, 'an anon socket receives no audit row at all');

    // --- handle_content: anon, filters, UPDATE, DELETE ---------------------
    const { data: platform } = await supabase.from('platforms').select('id').eq('name', 'youtube').single();
    const h1 = await supabase.from('account_handles').insert({ platform_id: platform.id, handle: `rt_pub_${run}` }).select().single();
    const h2 = await supabase.from('account_handles').insert({ platform_id: platform.id, handle: `rt_priv_${run}`, visibility: 'private' }).select().single();
    ok(!h1.error && !h2.error, 'A creates a public and a private handle', [h1.error, h2.error]);

    const seen = { anonIns: [], anonUpd: [], anonDel: [], aAll: [], aUpd: [], aDel: [], bUpd: [], bDel: [] };
    const chAnon = visitor.channel('content')
        .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'handle_content' }, (p) => seen.anonIns.push(p))
        .on('postgres_changes', { event: 'DELETE', schema: 'public', table: 'handle_content' }, (p) => seen.anonDel.push(p));
    const chA = supabase.channel('my-content')
        .on('postgres_changes', { event: '*', schema: 'public', table: 'handle_content', filter: `user_id=eq.${A.id}` }, (p) => seen.aAll.push(p));
    is(await subscribed(chAnon), 'SUBSCRIBED', 'anon: INSERT and DELETE bindings on handle_content');
    is(await subscribed(chA), 'SUBSCRIBED', "A: every event on A's content (filter user_id=eq.A)");

    const pub = await supabase.from('handle_content').insert({ handle_id: h1.data.id, platform_id: platform.id,
        platform_content_id: `pub-${run}`, title: 'Public video', tags: ['a', 'b'] }).select().single();
    const priv = await supabase.from('handle_content').insert({ handle_id: h2.data.id, platform_id: platform.id,
        platform_content_id: `priv-${run}`, title: 'Private draft' }).select().single();
    ok(!pub.error && !priv.error, 'A inserts a public and a private content row', [pub.error, priv.error]);
    ok(await waitFor(() => seen.aAll.length >= 2, 3000), 'A (owner) receives both INSERTs', seen.aAll.length);
    ok(await waitFor(() => seen.anonIns.length >= 1, 3000), 'anon receives the public row');
    is(seen.anonIns[0] && seen.anonIns[0].new.id, pub.data && pub.data.id, '... which is the public one');
    ok(Array.isArray(seen.anonIns[0] && seen.anonIns[0].new.tags) && seen.anonIns[0].new.tags.join() === 'a,b', 'text[] arrives as an array', seen.anonIns[0] && seen.anonIns[0].new.tags);
    await sleep(300);
    is(seen.anonIns.length, 1, 'anon never receives the private row');

    // UPDATE with filters: id=eq.X for A, in.(...) for anon, none for B.
    const chAupd = supabase.channel('one-video').on('postgres_changes',
        { event: 'UPDATE', schema: 'public', table: 'handle_content', filter: `id=eq.${pub.data.id}` }, (p) => seen.aUpd.push(p));
    const chAnonUpd = visitor.channel('two-videos').on('postgres_changes',
        { event: 'UPDATE', schema: 'public', table: 'handle_content', filter: `id=in.(${pub.data.id},${priv.data.id})` }, (p) => seen.anonUpd.push(p));
    const chBupd = supabaseB.channel('any-update').on('postgres_changes',
        { event: 'UPDATE', schema: 'public', table: 'handle_content' }, (p) => seen.bUpd.push(p));
    is(await subscribed(chAupd), 'SUBSCRIBED', 'A: UPDATE with filter id=eq.<one row>');
    is(await subscribed(chAnonUpd), 'SUBSCRIBED', 'anon: UPDATE with filter id=in.(<public>,<private>)');
    is(await subscribed(chBupd), 'SUBSCRIBED', 'B: every UPDATE');
    await supabase.from('handle_content').update({ title: 'Private draft v2' }).eq('id', priv.data.id);
    await supabase.from('handle_content').update({ title: 'Public video, renamed' }).eq('id', pub.data.id);
    ok(await waitFor(() => seen.aUpd.length >= 1 && seen.anonUpd.length >= 1 && seen.bUpd.length >= 1, 3000),
        'the public row\'s UPDATE reaches A, anon and B', { a: seen.aUpd.length, anon: seen.anonUpd.length, b: seen.bUpd.length });
    await sleep(300);
    is(seen.aUpd.length, 1, "A's id=eq filter lets only that row's UPDATE through");
    is(seen.aUpd[0] && seen.aUpd[0].new.title, 'Public video, renamed', 'payload.new has the new title');
    is(seen.aUpd[0] && seen.aUpd[0].old.id, pub.data.id, 'payload.old carries the primary key');
    is(seen.anonUpd.length, 1, "anon's in.() matches both rows, RLS lets only the public one through");
    ok(seen.bUpd.every((p) => p.new.id === pub.data.id), "B sees public content's UPDATE, never the private row's", seen.bUpd.map((p) => p.new.title));

    // The API's DELETE is a soft delete: an UPDATE the owner still sees,
    // and anon no longer may.
    const before = { anon: seen.anonUpd.length, a: seen.aUpd.length };
    const del = await supabase.from('handle_content').delete().eq('id', pub.data.id);
    ok(!del.error, "A deletes the public row through the API (a soft delete)", del.error);
    ok(await waitFor(() => seen.aUpd.length > before.a, 3000), 'A receives it as an UPDATE with deleted_at set');
    ok(seen.aUpd[seen.aUpd.length - 1] && seen.aUpd[seen.aUpd.length - 1].new.deleted_at, '... deleted_at is set');
    await sleep(300);
    is(seen.anonUpd.length, before.anon, 'anon does not: soft-deleted rows are not public any more');

    // Hard DELETE (by an operator in SQL): filters and RLS on the old row.
    const chAdel = supabase.channel('deletes').on('postgres_changes',
        { event: 'DELETE', schema: 'public', table: 'handle_content', filter: `user_id=eq.${A.id}` }, (p) => seen.aDel.push(p));
    const chBdel = supabaseB.channel('deletes').on('postgres_changes',
        { event: 'DELETE', schema: 'public', table: 'handle_content', filter: `user_id=eq.${A.id}` }, (p) => seen.bDel.push(p));
    is(await subscribed(chAdel), 'SUBSCRIBED', "A: DELETE with filter user_id=eq.A");
    is(await subscribed(chBdel), 'SUBSCRIBED', "B: DELETE with the same filter");
    const pub2 = await supabase.from('handle_content').insert({ handle_id: h1.data.id, platform_id: platform.id,
        platform_content_id: `pub2-${run}`, title: 'Another public video' }).select().single();
    await waitFor(() => seen.anonIns.length >= 2, 3000);
    psql(`DELETE FROM public.handle_content WHERE id = '${priv.data.id}'`);
    psql(`DELETE FROM public.handle_content WHERE id = '${pub2.data.id}'`);
    ok(await waitFor(() => seen.aDel.length >= 2, 3000), 'A receives both DELETEs', seen.aDel.length);
    is(seen.aDel[0] && seen.aDel[0].eventType, 'DELETE', 'eventType DELETE');
    is(seen.aDel[0] && seen.aDel[0].old.id, priv.data.id, 'payload.old.id is the deleted row');
    is(seen.aDel[0] && Object.keys(seen.aDel[0].old).join(), 'id', 'payload.old holds only the primary key (as Supabase)');
    ok(seen.aDel[0] && Object.keys(seen.aDel[0].new).length === 0, 'payload.new is empty');
    ok(await waitFor(() => seen.bDel.length >= 1 && seen.anonDel.length >= 1, 3000), "B and anon receive the public row's DELETE");
    await sleep(300);
    ok(seen.bDel.length === 1 && seen.bDel[0].old.id === pub2.data.id, "B never receives the private row's DELETE", seen.bDel.map((p) => p.old));
    ok(seen.anonDel.length === 1 && seen.anonDel[0].old.id === pub2.data.id, "neither does anon", seen.anonDel.map((p) => p.old));

    // A row far over NOTIFY's 8000-byte payload arrives whole.
    const big = 'x'.repeat(100000);
    const n0 = seen.aAll.length;
    const bigRow = await supabase.from('handle_content').insert({ handle_id: h1.data.id, platform_id: platform.id,
        platform_content_id: `big-${run}`, title: 'Long', description: big }).select('id').single();
    ok(!bigRow.error, 'A inserts a row with a 100,000-character description', bigRow.error);
    ok(await waitFor(() => seen.aAll.slice(n0).some((p) => p.eventType === 'INSERT' && p.new.id === bigRow.data.id), 3000), 'its INSERT is delivered');
    const bigMsg = seen.aAll.slice(n0).find((p) => p.new.id === (bigRow.data && bigRow.data.id));
    is(bigMsg && bigMsg.new.description && bigMsg.new.description.length, 100000, '... with the whole description');

    // --- token refresh mid-subscription ------------------------------------
    await sleep(1100); // a new token, not the same one (iat has 1 s steps)
    const oldToken = (await supabase.auth.getSession()).data.session.access_token;
    const ref = await supabase.auth.refreshSession();
    ok(!ref.error && ref.data.session && ref.data.session.access_token !== oldToken, "A's session is refreshed: a new access token", ref.error);
    await sleep(300);
    const n1 = jobUpdates.length;
    await service.from('audit_log').insert({ user_id: A.id, action: 'seo', job_id: crypto.randomUUID(), job_type: 'seo_submission', job_status: 'completed' });
    ok(await waitFor(() => jobUpdates.length > n1, 3000), "after the refresh A's subscription still receives A's jobs");

    // --- unsubscribe --------------------------------------------------------
    const rm = await supabase.removeChannel(proTip);
    is(rm, 'ok', 'removeChannel(job-updates) answers ok');
    const control = [];
    const chControl = supabase.channel('control').on('postgres_changes',
        { event: 'INSERT', schema: 'public', table: 'audit_log', filter: `user_id=eq.${A.id}` }, (p) => control.push(p));
    is(await subscribed(chControl), 'SUBSCRIBED', 'another channel of A on the same table');
    const n2 = jobUpdates.length;
    await service.from('audit_log').insert({ user_id: A.id, action: 'sync', job_id: crypto.randomUUID(), job_type: 'platform_sync', job_status: 'completed' });
    ok(await waitFor(() => control.length > 0, 3000), 'the other channel receives the next job');
    await sleep(300);
    is(jobUpdates.length, n2, 'the removed channel does not');
} catch (e) {
    ok(false, `the script threw: ${e && e.stack || e}`);
} finally {
    for (const c of all) {
        try { await c.removeAllChannels(); } catch (e) { /* closing */ }
        try { c.realtime.disconnect(); } catch (e) { /* closing */ }
    }
}
console.log(`1..${testNo}`);
process.exit(failed ? 1 : 0);
