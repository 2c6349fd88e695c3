#!/usr/bin/perl
# A sync whose page write (sv_sync_upsert) goes through the job launcher,
# with the launcher's serving process killed at that statement (stopped
# there by job_launcher_test_hook, then SIGKILLed), against the fake
# YouTube API of t/750 (SV::Test::Sync), two items a page.
#
#  - killed after the page write ran, before its answer went out (the job
#    had said "go"): the write is not sent again. The sync fails: one
#    failed audit row with the reason, the quota refunded, the handle's
#    sync_status failed and its last_synced_at unchanged; the page it
#    wrote is kept (its new item, its changed title and that title's one
#    history row), the pages after it are not read into the database,
#    nothing is soft-deleted and nothing is duplicated. The launcher
#    replaced, syncing again completes with true counts (new + updated +
#    unchanged = what the platform lists), the quota spent once for it.
#  - killed before the job said "go" (the statement received, not run):
#    the job runs the page write itself on its own connection and the sync
#    completes, once, with true counts.
#  - killed after the removal of what the platform no longer lists
#    (sv_sync_remove_missing) ran: not sent again either; the sync fails
#    the same way, keeping its pages and the removal; syncing again finds
#    nothing left to change.

use strict;
use warnings;
use Test::More;
use SV::Test qw(sv_tempdir wait_until slurp_file write_file proc_state proc_children);
use SV::Test::Sync;

my $tmp = sv_tempdir(prefix => 'svsynclost');
my $hook = "$tmp/hook";
my $x = SV::Test::Sync->new(workers => 2, conf => { sync_max_pages => 10,
    job_launcher_test_hook => $hook, job_launcher_processes => 2 });
# The launcher runs as the workers' user: it reads the hook and removes it.
if (my $u = $x->user) {
    my ($uid, $gid) = (getpwnam $u)[2, 3];
    chown $uid, $gid, $tmp or die "chown $tmp: $!";
}
my $s = $x->stack;
my ($ngx, $pool, $su) = ($s->ngx, $s->pool, $s->su);
my $yt = $x->fake('youtube');

my $A = $s->user('a@example.com');
$su->do('UPDATE subscription_settings SET max_syncs_per_month = 100 WHERE user_id = ?', undef, $A);
my $hid = $s->handle($A, 'alice', platform => 'youtube');
my $tok = $s->jwt(user => $A);
$x->connect($A, 'youtube');

sub used { $s->quota_used($A, 'syncs') }
sub handle_state {
    return $su->selectrow_array('SELECT sync_status, last_synced_at FROM account_handles WHERE id = ?', undef, $hid);
}
# The handle's content: platform id => {title, deleted}.
sub content {
    return { map { $_->[0] => { title => $_->[1], deleted => $_->[2] } } @{ $su->selectall_arrayref(
        'SELECT platform_content_id, title, deleted_at IS NOT NULL FROM handle_content WHERE handle_id = ?',
        undef, $hid) } };
}
sub duplicated {
    return scalar $su->selectrow_array('SELECT count(*) FROM (SELECT platform_content_id FROM handle_content
        WHERE handle_id = ? GROUP BY platform_content_id HAVING count(*) > 1) d', undef, $hid);
}
# The handle's edit history: "pcid field: old -> new (changed_by)", in order.
sub history {
    return [ map { "$_->[0] $_->[1]: $_->[2] -> $_->[3] ($_->[4])" } @{ $su->selectall_arrayref(
        'SELECT c.platform_content_id, e.field_name, e.old_value, e.new_value, e.changed_by
           FROM content_edit_history e JOIN handle_content c ON c.id = e.content_id
          WHERE c.handle_id = ? ORDER BY e.created_at, c.platform_content_id', undef, $hid) } ];
}
sub item {
    my ($n, %o) = @_;
    return { id => "vid$n", title => "Video $n", description => "About video $n", tags => ["tag$n"],
        views => 100 * $n, likes => 10 * $n, comments => $n, duration => 60 + $n, created => 1714665600 - 3600 * $n, %o };
}
sub arm { write_file($hook, "$_[0] $_[1]\n", 0644) }
# The serving process of the launcher that stopped on the hook.
sub stopped_launcher {
    my $L;
    wait_until(sub {
        ($L) = grep { (slurp_file("/proc/$_/cmdline") // '') =~ /--launcher/ && proc_state($_) eq 'T' }
            map { proc_children($_) } proc_children($pool->pid);
        return $L;
    }, 30);
    return $L;
}
sub serving {
    my $L = $pool->launcher_pid or return ();
    return grep { (slurp_file("/proc/$_/cmdline") // '') =~ /--launcher/ } proc_children($L);
}
# A sync accepted (202, not waited for): its job id.
sub accept_sync {
    my ($name) = @_;
    my ($res, $doc) = $ngx->call('POST', '/functions/v1/sync-platform', token => $tok, body => { handleId => $hid });
    is($res->code, 202, "$name: accepted") or diag $res->as_string;
    return $doc->{job_id};
}
# The job as its owner sees it once it ended, and its audit rows.
sub ended {
    my ($job, $name) = @_;
    my ($res, $doc) = $ngx->call('GET', "/functions/v1/jobs/$job?wait=50", token => $tok);
    is($res->code, 200, "$name: the job's status answers") or diag $res->as_string;
    ok(wait_until(sub { @{ $s->job_rows($job) } }, 10), "$name: the job ended");
    my $rows = $su->selectall_arrayref('SELECT job_status, job_error, job_result FROM audit_log WHERE job_id = ?',
        { Slice => {} }, $job);
    is(scalar @$rows, 1, "$name: exactly one audit_log row") or diag explain $rows;
    return ($doc, $rows->[0]);
}
# new + updated + unchanged: every item the platform lists, counted once.
sub counted { my ($r) = @_; return $r->{new} + $r->{updated} + $r->{unchanged} }

# --- a first sync: five videos -------------------------------------------------------
$yt->items(map { item($_) } 1 .. 5)->mode(page_size => 2);
my $used = used();
my ($doc) = ended(accept_sync('first sync'), 'first sync');
is($doc->{status}, 'completed', 'first sync: completed') or diag explain $doc;
is_deeply([@{ $doc->{result} }{qw(new updated unchanged removed)}], [5, 0, 0, 0], 'first sync: 5 new');
is(used(), $used + 1, 'first sync: the quota spent once');
my ($status, $synced) = handle_state();
is($status, 'ok', 'first sync: the handle is synced');
ok($synced, 'with its last_synced_at');

# --- killed after the page write ran -----------------------------------------------------
# The platform now lists, two a page: [vid6 new, vid1 retitled], [vid2
# retitled, vid3], [vid7 new, vid4]; vid5 is gone. The first page's write
# runs on the launcher, which is killed before it answers.
my @listed = (item(6), item(1, title => 'Video 1 (remastered)'), item(2, title => 'Video 2 (cut)'), item(3),
    item(7), item(4));
$yt->items(@listed);
$used = used();
my $from = $pool->log_offset;
arm('sql_done', 'sv_sync_upsert');
my $job = accept_sync('lost page');
my $L = stopped_launcher();
ok($L, 'lost page: the launcher stopped after running the page write') or diag $pool->log(from => $from);
ok(!-e $hook, 'the hook fired');
my $c = content();
ok($c->{vid6} && $c->{vid1}{title} eq 'Video 1 (remastered)', 'the page write ran (committed) before the stop')
    or diag explain $c;
kill 'KILL', $L if $L;
my $row;
($doc, $row) = ended($job, 'lost page');
is($doc->{status}, 'failed', 'lost page: the user sees the sync failed') or diag explain $doc;
like($doc->{error} // '', qr/job launcher did not answer/, 'lost page: with the reason');
is($row->{job_status}, 'failed', 'lost page: the audit row says failed');
like($row->{job_error} // '', qr/job launcher did not answer/, 'lost page: and why');
is(used(), $used, 'lost page: the quota refunded');
my ($status2, $synced2) = handle_state();
is($status2, 'failed', "lost page: the handle's sync_status is failed");
is($synced2, $synced, 'lost page: its last_synced_at unchanged');
$c = content();
is_deeply({ map { $_ => [$c->{$_}{title}, $c->{$_}{deleted} ? 1 : 0] } keys %$c },
    { vid1 => ['Video 1 (remastered)', 0], vid2 => ['Video 2', 0], vid3 => ['Video 3', 0], vid4 => ['Video 4', 0],
      vid5 => ['Video 5', 0], vid6 => ['Video 6', 0] },
    'lost page: the page written is kept, nothing after it written, nothing soft-deleted') or diag explain $c;
is(duplicated(), 0, 'lost page: no item twice');
is_deeply(history(), ['vid1 title: Video 1 -> Video 1 (remastered) (sync)'],
    "lost page: the kept page's change recorded once");
unlike($pool->log(from => $from), qr/event=job_relay_lost/, 'lost page: the page write was not sent again');

# --- syncing again, the launcher replaced ------------------------------------------------
ok(wait_until(sub { my @p = serving(); @p == 2 && !grep { $_ == $L } @p }, 20),
    'the launcher started another serving process in place of the killed one');
$used = used();
($doc, $row) = ended(accept_sync('again'), 'again');
is($doc->{status}, 'completed', 'again: the sync completes') or diag explain $doc;
is($row->{job_status}, 'completed', 'again: its audit row says so');
my $r = $doc->{result};
is_deeply([@$r{qw(new updated unchanged removed pages)}], [1, 1, 4, 1, 3],
    'again: true counts: vid7 new, vid2 updated, the rest (with the kept page) unchanged, vid5 removed')
    or diag explain $r;
is(counted($r), scalar @listed, 'again: new + updated + unchanged = the items the platform lists');
ok($r->{complete}, 'again: the listing was complete');
is(used(), $used + 1, 'again: the quota spent once');
($status2, $synced2) = handle_state();
is($status2, 'ok', "again: the handle's sync_status is ok");
ok($synced2 gt $synced, 'again: its last_synced_at moved on');
$c = content();
is_deeply({ map { $_->{id} => $c->{ $_->{id} }{title} } @listed }, { map { $_->{id} => $_->{title} } @listed },
    'again: every listed item stored with its title');
ok($c->{vid5}{deleted}, 'again: the vanished item soft-deleted');
is(scalar(grep { !$_->{deleted} } values %$c), scalar @listed, 'again: as many live items as listed');
is(duplicated(), 0, 'again: no item twice');
is_deeply([sort @{ history() }], ['vid1 title: Video 1 -> Video 1 (remastered) (sync)',
    'vid2 title: Video 2 -> Video 2 (cut) (sync)'], 'again: each title change recorded once');

# --- killed before "go": the job writes the page itself -------------------------------------
# [vid8 new, vid6], [vid1, vid2], [vid3 retitled, vid7], [vid4].
@listed = (item(8), item(6), item(1, title => 'Video 1 (remastered)'), item(2, title => 'Video 2 (cut)'),
    item(3, title => 'Video 3 (extended)'), item(7), item(4));
$yt->items(@listed);
$used = used();
my $history = history();
$from = $pool->log_offset;
arm('sql_received', 'sv_sync_upsert');
$job = accept_sync('before go');
$L = stopped_launcher();
ok($L, 'before go: the launcher stopped on receiving the page write') or diag $pool->log(from => $from);
kill 'KILL', $L if $L;
($doc, $row) = ended($job, 'before go');
is($doc->{status}, 'completed', 'before go: the sync completes') or diag explain $doc;
is($row->{job_status}, 'completed', 'before go: its audit row says so');
$r = $doc->{result};
is_deeply([@$r{qw(new updated unchanged removed pages)}], [1, 1, 5, 0, 4],
    'before go: true counts: vid8 new, vid3 updated, the rest unchanged') or diag explain $r;
is(counted($r), scalar @listed, 'before go: new + updated + unchanged = the items the platform lists');
is(used(), $used + 1, 'before go: the quota spent once');
$c = content();
is_deeply({ map { $_->{id} => $c->{ $_->{id} }{title} } @listed }, { map { $_->{id} => $_->{title} } @listed },
    'before go: every listed item stored with its title');
is(duplicated(), 0, 'before go: no item twice');
is_deeply([sort @{ history() }], [sort @$history, 'vid3 title: Video 3 -> Video 3 (extended) (sync)'],
    'before go: the one change recorded once');
unlike($pool->log(from => $from), qr/event=job_relay_lost/, 'before go: nothing was lost');
is((handle_state())[0], 'ok', "before go: the handle's sync_status is ok");


# --- killed after the removal of what the platform no longer lists ran ------------------------
# vid4 is gone: every page is written, then sv_sync_remove_missing runs on
# the launcher, which is killed before it answers. Not sent again either:
# the sync fails, keeping what it did.
ok(wait_until(sub { my @p = serving(); @p == 2 && !grep { $_ == $L } @p }, 20), 'the launcher serves again');
@listed = grep { $_->{id} ne 'vid4' } @listed;
$yt->items(@listed);
$used = used();
($status, $synced) = handle_state();
$history = history();
$from = $pool->log_offset;
arm('sql_done', 'sv_sync_remove_missing');
$job = accept_sync('lost removal');
$L = stopped_launcher();
ok($L, 'lost removal: the launcher stopped after running the removal') or diag $pool->log(from => $from);
ok(content()->{vid4}{deleted}, 'lost removal: the removal ran before the stop');
kill 'KILL', $L if $L;
($doc, $row) = ended($job, 'lost removal');
is($doc->{status}, 'failed', 'lost removal: the sync failed') or diag explain $doc;
like($row->{job_error} // '', qr/job launcher did not answer/, 'lost removal: the audit row says why');
is(used(), $used, 'lost removal: the quota refunded');
is_deeply([handle_state()], ['failed', $synced], "lost removal: the handle failed, its last_synced_at unchanged");
$c = content();
is_deeply({ map { $_->{id} => $c->{ $_->{id} }{title} } @listed }, { map { $_->{id} => $_->{title} } @listed },
    'lost removal: the pages written are kept');
ok($c->{vid4}{deleted}, 'lost removal: and the removal');
is(duplicated(), 0, 'lost removal: no item twice');
is_deeply(history(), $history, 'lost removal: no change recorded');
ok(wait_until(sub { my @p = serving(); @p == 2 && !grep { $_ == $L } @p }, 20), 'the launcher serves again');
$used = used();
($doc, $row) = ended(accept_sync('after the lost removal'), 'after the lost removal');
is($doc->{status}, 'completed', 'after the lost removal: the sync completes') or diag explain $doc;
$r = $doc->{result};
is_deeply([@$r{qw(new updated unchanged removed)}], [0, 0, scalar @listed, 0],
    'after the lost removal: true counts: everything unchanged, nothing left to remove') or diag explain $r;
is(used(), $used + 1, 'after the lost removal: the quota spent once');
is((handle_state())[0], 'ok', "after the lost removal: the handle's sync_status is ok");
is(scalar(grep { !$_->{deleted} } values %{ content() }), scalar @listed, 'after the lost removal: as many live items as listed');
ok(!-e $hook, 'every hook fired');
$s->stop;

done_testing;
