// supabase-js's auth.admin.* against a StreamVibe server, as a server-side
// client holding the service_role key calls them: createUser, listUsers
// (its pagination read from X-Total-Count and Link), getUserById,
// updateUserById (metadata, password, ban) and deleteUser, and the same
// calls refused with the anon key. Prints TAP on stdout.
//
// Run by t/510-supabase-js-admin.t with the pinned @supabase/supabase-js of
// t/js/package-lock.json. By hand:
//
//   SUPABASE_URL=http://127.0.0.1:8080 SUPABASE_ANON_KEY=... SUPABASE_SERVICE_KEY=... \
//   node --experimental-websocket admin-users.mjs

import { createClient } from '@supabase/supabase-js';
import { randomBytes } from 'node:crypto';

const URL_ = process.env.SUPABASE_URL;
const ANON_KEY = process.env.SUPABASE_ANON_KEY;
const SERVICE_KEY = process.env.SUPABASE_SERVICE_KEY;

if (!URL_ || !ANON_KEY || !SERVICE_KEY) {
    console.log('1..0 # SKIP SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_KEY must be set');
    process.exit(1);
}

let testNo = 0;
function diag(text) {
    for (const line of String(text).split('\n')) console.log(`# ${line}`);
}
function ok(cond, name, extra) {
    testNo += 1;
    console.log(`${cond ? '' : 'not '}ok ${testNo} - ${String(name).replace(/#/g, '\\#')}`);
    if (!cond && extra !== undefined) diag(typeof extra === 'string' ? extra : JSON.stringify(extra, null, 2));
    return !!cond;
}
function is(got, want, name) {
    return ok(got === want, name, `got: ${JSON.stringify(got)}\nexpected: ${JSON.stringify(want)}`);
}

const opts = { auth: { persistSession: false, autoRefreshToken: false } };
const admin = createClient(URL_, SERVICE_KEY, opts).auth.admin;
const tag = randomBytes(4).toString('hex');
const email = (n) => `admin-js-${tag}-${n}@example.com`;
const userClient = () => createClient(URL_, ANON_KEY, opts);

async function main() {
    // createUser
    const created = [];
    for (let i = 1; i <= 3; i++) {
        const { data, error } = await admin.createUser({
            email: email(i), password: `password number ${i}`, email_confirm: true,
            user_metadata: { n: i }, app_metadata: { team: 'js' },
        });
        ok(!error && data.user && data.user.id, `createUser ${i}`, error);
        created.push(data.user);
    }
    const [u1, u2, u3] = created;
    is(u1.email, email(1), 'createUser: the email');
    ok(u1.email_confirmed_at, 'createUser: email_confirm confirmed it');
    is(u1.user_metadata.n, 1, 'createUser: user_metadata');
    is(u1.app_metadata.team, 'js', 'createUser: app_metadata');
    is(u1.app_metadata.provider, 'email', 'createUser: app_metadata keeps provider');
    {
        const { data, error } = await admin.createUser({ email: email(1).toUpperCase(), password: 'whatever password' });
        ok(error && !data.user, 'createUser with a taken email is refused');
        is(error && error.code, 'email_exists', "with GoTrue's email_exists");
        is(error && error.status, 422, 'status 422');
    }

    // the user signs in, and sees what getUserById sees
    const c1 = userClient();
    {
        const { data, error } = await c1.auth.signInWithPassword({ email: email(1), password: 'password number 1' });
        ok(!error && data.session, 'the created user signs in', error);
        const me = await c1.auth.getUser();
        const byId = await admin.getUserById(u1.id);
        ok(!byId.error, 'getUserById', byId.error);
        is(JSON.stringify(byId.data.user), JSON.stringify(me.data.user), 'getUserById: the user object getUser answers');
    }

    // listUsers: pages of one, newest first
    {
        const { data, error } = await admin.listUsers({ page: 1, perPage: 1 });
        ok(!error, 'listUsers page 1', error);
        is(data.users.length, 1, 'listUsers: one per page');
        is(data.users[0].id, u3.id, 'listUsers: newest first');
        is(data.total, 3, 'listUsers: total from X-Total-Count');
        is(data.nextPage, 2, 'listUsers: nextPage from Link');
        is(data.lastPage, 3, 'listUsers: lastPage from Link');
        const p3 = await admin.listUsers({ page: 3, perPage: 1 });
        is(p3.data.users[0].id, u1.id, 'listUsers page 3: the oldest');
        is(p3.data.nextPage, null, 'listUsers page 3: no nextPage');
        const all = await admin.listUsers();
        is(all.data.users.length, 3, 'listUsers without parameters: all three');
        const bad = await admin.listUsers({ page: 1, perPage: 0 });
        ok(bad.error && bad.error.status === 400, 'listUsers perPage 0: 400', bad.error);
    }

    // updateUserById
    {
        const { data, error } = await admin.updateUserById(u2.id, { user_metadata: { n: null, nick: 'two' } });
        ok(!error, 'updateUserById metadata', error);
        is(JSON.stringify(data.user.user_metadata), JSON.stringify({ nick: 'two' }), 'metadata merged, null removing');
    }
    {
        const c2 = userClient();
        const s = await c2.auth.signInWithPassword({ email: email(2), password: 'password number 2' });
        ok(!s.error, 'user 2 signs in');
        const { error } = await admin.updateUserById(u2.id, { password: 'a fresh password 2' });
        ok(!error, 'updateUserById password', error);
        const old = await c2.auth.refreshSession();
        ok(old.error, "user 2's session was ended by the new password");
        const again = await userClient().auth.signInWithPassword({ email: email(2), password: 'a fresh password 2' });
        ok(!again.error, 'the new password signs in', again.error);
        const weak = await admin.updateUserById(u2.id, { password: 'short' });
        is(weak.error && weak.error.code, 'weak_password', 'a short password: weak_password');
    }
    {
        const { data, error } = await admin.updateUserById(u3.id, { ban_duration: '876000h' });
        ok(!error && data.user.banned_until, 'updateUserById ban_duration', error);
        const s = await userClient().auth.signInWithPassword({ email: email(3), password: 'password number 3' });
        ok(s.error, 'a banned user cannot sign in');
        const un = await admin.updateUserById(u3.id, { ban_duration: 'none' });
        ok(!un.error && !un.data.user.banned_until, 'ban_duration none lifts it', un.error);
        const s2 = await userClient().auth.signInWithPassword({ email: email(3), password: 'password number 3' });
        ok(!s2.error, 'and the user signs in again', s2.error);
    }

    // the anon key is not an admin
    {
        const anonAdmin = createClient(URL_, ANON_KEY, opts).auth.admin;
        const l = await anonAdmin.listUsers();
        is(l.error && l.error.status, 403, 'listUsers with the anon key: 403');
        is(l.error && l.error.code, 'not_admin', 'not_admin');
        const d = await anonAdmin.deleteUser(u1.id);
        is(d.error && d.error.code, 'not_admin', 'deleteUser with the anon key: not_admin');
        const g = await admin.getUserById(u1.id);
        ok(!g.error && g.data.user.id === u1.id, 'and the user is still there');
    }

    // deleteUser
    {
        const { error } = await admin.deleteUser(u1.id);
        ok(!error, 'deleteUser', error);
        const g = await admin.getUserById(u1.id);
        is(g.error && g.error.status, 404, 'getUserById after deleteUser: 404');
        const s = await userClient().auth.signInWithPassword({ email: email(1), password: 'password number 1' });
        ok(s.error, 'the deleted user cannot sign in');
        const l = await admin.listUsers();
        is(l.data.total, 2, 'listUsers: two left');
        const soft = await admin.deleteUser(u2.id, true);
        is(soft.error && soft.error.status, 400, 'deleteUser soft: refused with 400');
    }
}

const watchdog = setTimeout(() => { diag('watchdog: timed out'); process.exit(2); }, 120000);
try {
    await main();
} catch (e) {
    ok(false, 'no exception', e && e.stack ? e.stack : String(e));
}
clearTimeout(watchdog);
console.log(`1..${testNo}`);
process.exit(0);
