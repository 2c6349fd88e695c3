#!/usr/bin/perl
# sync-platform end to end through nginx, for YouTube, Instagram and
# TikTok, against fake APIs that answer in each platform's documented
# shapes, with the user's tokens from a real OAuth flow (fake provider):
# the first sync creates the content; a second records a changed title
# in content_edit_history as changed_by 'sync', counts updated and
# unchanged, and soft-deletes what vanished; a sync stopped by the page
# limit deletes nothing; an expired token is refreshed once and the sync
# goes on; a 429 is retried after its Retry-After; a 500 or a malformed
# answer fails the job with the reason and refunds the quota; no
# credential fails it with the reason. Refusals: another user's handle
# (404), a handle already syncing (409).
#
# Run as root, the pool's workers run as an unprivileged user and the
# vault's key file is root's alone (0600): the job gets the keys from its
# worker through a pipe, which it has closed by the time it works, and it
# holds none of the worker's sockets.

use strict;
use warnings;
use Test::More;
use JSON::PP;
use SV::Test qw(wait_until slurp_file);
use SV::Test::Sync;

my $JSON = JSON::PP->new->canonical;
my $x = SV::Test::Sync->new(workers => 2, conf => { sync_max_pages => 3 });
my ($s, $oauth, $as_user) = ($x->stack, $x->oauth, $x->user);
my %fake = map { $_ => $x->fake($_) } qw(youtube instagram tiktok);
my ($ngx, $pool, $su) = ($s->ngx, $s->pool, $s->su);

my $A = $s->user('a@example.com');
my $B = $s->user('b@example.com');
$su->do('UPDATE subscription_settings SET max_syncs_per_month = 1000 WHERE user_id IN (?, ?)', undef, $A, $B);
my %h = map { $_ => $s->handle($A, "alice-$_", platform => $_) } qw(youtube instagram tiktok);
my $hB = $s->handle($B, 'bob', platform => 'youtube');
my ($tokA, $tokB) = ($s->jwt(user => $A), $s->jwt(user => $B));
$x->connect($A, $_, "A connected $_ through the OAuth flow") for qw(youtube instagram tiktok);

sub used { scalar $su->selectrow_array('SELECT current_syncs_count FROM subscription_settings WHERE user_id = ?', undef, $_[0] // $A) }
sub audit {
    my ($job) = @_;
    return $su->selectrow_hashref('SELECT job_status, job_type, job_error, job_result::text AS result, resource_id
        FROM audit_log WHERE job_id = ?', undef, $job);
}
sub rows {
    my ($hid) = @_;
    return { map { $_->{platform_content_id} => $_ } @{ $su->selectall_arrayref(
        'SELECT platform_content_id, title, description, tags, content_type, view_count, like_count, comment_count,
                duration_seconds, content_url, thumbnail_url, published_at, deleted_at, user_id
           FROM handle_content WHERE handle_id = ?', { Slice => {} }, $hid) } };
}
sub history {
    my ($hid) = @_;
    return $su->selectall_arrayref('SELECT e.field_name, e.old_value, e.new_value, e.changed_by, c.platform_content_id
        FROM content_edit_history e JOIN handle_content c ON c.id = e.content_id WHERE c.handle_id = ? ORDER BY e.created_at',
        { Slice => {} }, $hid);
}
# A sync accepted and waited for (the document's {success, result} / {error} answer).
sub sync {
    my ($hid, $tok, $name) = @_;
    my ($res, $doc) = $ngx->call('POST', '/functions/v1/sync-platform?wait=50', token => $tok // $tokA,
        body => { handleId => $hid });
    ok($res->code == 200 || $res->code == 500, "$name: the job ended within the wait") or diag $res->as_string;
    return ($res, $doc);
}
sub item {
    my ($n, %o) = @_;
    return { id => "vid$n", title => "Video $n", description => "About video $n", tags => ["tag$n", 'common'],
        views => 100 * $n, likes => 10 * $n, comments => $n, duration => 60 + $n, created => 1714665600 - 3600 * $n, %o };
}

for my $p (qw(youtube instagram tiktok)) {
    my $f = $fake{$p};
    my $hid = $h{$p};

    # --- the first sync creates the content ----------------------------------------
    my @items = map { item($_) } 1 .. 5;
    $items[4]{comments} = undef;      # comments disabled: absent from the answer
    $f->items(@items)->mode(page_size => 2);
    my $before = used();
    my ($res, $doc) = sync($hid, undef, "$p first sync");
    is($res->code, 200, "$p: the first sync succeeds") or diag explain $doc;
    my $r = $doc->{result};
    is_deeply([@$r{qw(new updated unchanged removed pages)}], [5, 0, 0, 0, 3], "$p: 5 new in 3 pages") or diag explain $r;
    ok($r->{complete}, "$p: the listing was complete") or diag explain $r;
    my $a = audit($doc->{job_id});
    is($a->{job_status}, 'completed', "$p: its audit row says completed");
    is($a->{job_type}, 'platform_sync', "$p: of type platform_sync");
    is($a->{resource_id}, $hid, "$p: about the handle");
    is_deeply($JSON->decode($a->{result}), $r, "$p: the audit row carries the counts");
    is(used(), $before + 1, "$p: one sync of the quota spent");
    my $rows = rows($hid);
    is(scalar keys %$rows, 5, "$p: five rows in handle_content");
    my $v1 = $rows->{vid1};
    is($v1->{title}, 'Video 1', "$p: the title");
    is($v1->{user_id}, $A, "$p: the row is the handle owner's");
    like($v1->{description}, qr/About video 1/, "$p: the description");
    is($v1->{like_count}, 10, "$p: the like count");
    is($v1->{comment_count}, 1, "$p: the comment count");
    is($rows->{vid5}{comment_count}, 0, "$p: a hidden comment count is stored as 0 on a new row");
    like($v1->{published_at}, qr/^2024-05-02 15:00:00/, "$p: the publication time");
    ok($v1->{content_url} && $v1->{thumbnail_url}, "$p: the content and thumbnail URLs");
    like(join(",", @{ $v1->{tags} // [] }), qr/tag1/, "$p: the tags");
    if ($p ne 'instagram') {
        is($v1->{view_count}, 100, "$p: the view count");
        is($v1->{duration_seconds}, 61, "$p: the duration");
    }
    is($v1->{content_type}, $p eq 'instagram' ? 'reel' : 'video', "$p: the content type");
    my ($status, $synced) = $su->selectrow_array('SELECT sync_status, last_synced_at FROM account_handles WHERE id = ?', undef, $hid);
    is($status, 'ok', "$p: the handle's sync_status is ok");
    ok($synced, "$p: and its last_synced_at is set");

    # --- a changed title, a vanished item ------------------------------------------
    $items[0]{title} = 'Video 1 (remastered)';
    $items[1]{views} = 5000;                        # counts change: updated, no history
    my @now = @items[0 .. 3];                        # vid5 is gone from the platform
    $f->items(@now);
    ($res, $doc) = sync($hid, undef, "$p second sync");
    is($res->code, 200, "$p: the second sync succeeds") or diag explain $doc;
    $r = $doc->{result};
    is_deeply([@$r{qw(new updated unchanged removed)}], [0, $p eq 'instagram' ? 1 : 2, $p eq 'instagram' ? 3 : 2, 1],
        "$p: counts new, updated, unchanged, removed") or diag explain $r;
    $rows = rows($hid);
    is($rows->{vid1}{title}, 'Video 1 (remastered)', "$p: the new title is stored");
    ok($rows->{vid5}{deleted_at}, "$p: the vanished item is soft-deleted");
    ok(!$rows->{vid4}{deleted_at}, "$p: the others are not");
    my @h = grep { $_->{platform_content_id} eq 'vid1' && $_->{field_name} eq 'title' } @{ history($hid) };
    is(scalar @h, 1, "$p: one history row for the title");
    is($h[0]{changed_by}, 'sync', "$p: changed_by is sync");
    is($h[0]{old_value}, 'Video 1', "$p: with the old value");
    is($h[0]{new_value}, 'Video 1 (remastered)', "$p: and the new one");
    is(scalar(grep { $_->{platform_content_id} ne 'vid1' } @{ history($hid) }), 0,
        "$p: nothing else recorded (a re-signed thumbnail URL is not an edit)");
    my ($hrows) = $su->selectrow_array(q{SELECT count(*) FROM content_edit_history WHERE changed_by <> 'sync'});
    is($hrows, 0, "$p: no change is attributed to the user");

    # --- TikTok lists public videos only: a private one is not deleted ----------------
    if ($p eq 'tiktok') {
        $f->mode(page_size => 2, private => ['vid3']);
        ($res, $doc) = sync($hid, undef, 'tiktok private video');
        is($res->code, 200, 'tiktok: a sync with a video made private succeeds') or diag explain $doc;
        is($doc->{result}{kept_unlisted}, 1, 'tiktok: the unlisted video is confirmed with video/query and kept');
        is($doc->{result}{removed}, 0, 'tiktok: nothing removed');
        ok(!rows($hid)->{vid3}{deleted_at}, 'tiktok: the private video is not soft-deleted');
        my @q = grep { $_->{path} eq '/v2/video/query/' } $f->requests;
        is_deeply([map { $_->{json}{filters}{video_ids} } @q], [['vid5'], ['vid3']],
            'tiktok: video/query was asked about what the list left out, each time (vid5 was gone, vid3 is private)');
        $f->mode(page_size => 2);
    }

    # --- the page limit: nothing is soft-deleted -----------------------------------
    my @many = ((grep { $_->{id} ne 'vid2' } @now), map { item($_) } 6 .. 10);   # vid2 gone, 8 items
    $f->items(@many);
    ($res, $doc) = sync($hid, undef, "$p page limit");
    is($res->code, 200, "$p: a sync stopped by the page limit still completes") or diag explain $doc;
    $r = $doc->{result};
    is($r->{pages}, 3, "$p: it read sync_max_pages pages");
    ok(!$r->{complete}, "$p: the listing is not complete");
    is($r->{stopped}, 'page_limit', "$p: it says why");
    is($r->{removed}, 0, "$p: nothing removed");
    $rows = rows($hid);
    ok(!$rows->{vid2}{deleted_at}, "$p: the item it did not see is not soft-deleted");
    is(scalar(grep { !$_->{deleted_at} } values %$rows), 4 + 3, "$p: the new items of the pages read are in");
    $f->items(@now);

    # --- an expired token: refreshed once, and the sync goes on -----------------------
    my @issued = grep { /^fake-at-/ } $oauth->tokens;
    my $refreshes = grep { $_ eq 'ok' } $oauth->calls('refresh_token');
    $f->mode(page_size => 2, revoked => [@issued]);
    my $from = scalar $f->requests;
    ($res, $doc) = sync($hid, undef, "$p expired token");
    is($res->code, 200, "$p: a sync whose token the platform rejects succeeds after a refresh") or diag explain $doc;
    ok($doc->{result}{token_refreshed}, "$p: the result says the token was refreshed");
    is(scalar(grep { $_ eq 'ok' } $oauth->calls('refresh_token')), $refreshes + 1, "$p: one refresh at the provider");
    my @reqs = ($f->requests)[$from .. scalar($f->requests) - 1];
    my ($first_token) = ($reqs[0]{headers}{authorization} // '') =~ /Bearer (\S+)/;
    my ($last_token) = ($reqs[-1]{headers}{authorization} // '') =~ /Bearer (\S+)/;
    ok((grep { $_ eq ($first_token // '') } @issued), "$p: the first call carried the old token");
    ok($last_token && !(grep { $_ eq $last_token } @issued), "$p: the later calls a new one");
    is(scalar(grep { ($_->{query} // '') =~ /access_token=/ } @reqs), 0, "$p: no token in a URL");

    # --- 429 with Retry-After ---------------------------------------------------------
    $f->mode(page_size => 2, busy_once => 2);
    $from = scalar $f->requests;
    ($res, $doc) = sync($hid, undef, "$p 429");
    is($res->code, 200, "$p: a 429 is retried and the sync succeeds") or diag explain $doc;
    @reqs = ($f->requests)[$from .. scalar($f->requests) - 1];
    cmp_ok($reqs[1]{t} - $reqs[0]{t}, '>=', 1.9, "$p: the retry came after the Retry-After (2 s)");
    is("$reqs[0]{method} $reqs[0]{path}", "$reqs[1]{method} $reqs[1]{path}", "$p: the same call was repeated");

    # --- 500 and malformed answers: failed, refunded ------------------------------------
    for my $case ([fail => 500, qr/answered 500/], [malformed => 1, qr/not a JSON object/]) {
        my ($k, $v, $re) = @$case;
        $f->mode(page_size => 2, $k => $v);
        $before = used();
        my $live = grep { !$_->{deleted_at} } values %{ rows($hid) };
        ($res, $doc) = sync($hid, undef, "$p $k");
        is($res->code, 500, "$p $k: the sync fails") or diag explain $doc;
        like($doc->{error} // '', $re, "$p $k: with the reason");
        $a = audit($doc->{job_id});
        is($a->{job_status}, 'failed', "$p $k: its audit row says failed");
        like($a->{job_error} // '', $re, "$p $k: with the reason");
        is(used(), $before, "$p $k: the quota is refunded");
        ($status) = $su->selectrow_array('SELECT sync_status FROM account_handles WHERE id = ?', undef, $hid);
        is($status, 'failed', "$p $k: the handle's sync_status is failed");
        is(scalar(grep { !$_->{deleted_at} } values %{ rows($hid) }), $live, "$p $k: no content touched");
    }
    $f->mode(page_size => 2);
}

# --- refusals ---------------------------------------------------------------------------
my $before = used();
my ($res, $doc) = $ngx->call('POST', '/functions/v1/sync-platform', token => $tokA, body => { handleId => $hB });
is($res->code, 404, "another user's handle: 404");
is(used(), $before, 'and nothing spent');

# YouTube's daily quota is spent: failed at once, not retried.
$fake{youtube}->mode(page_size => 2, quota => 1);
my $from = scalar $fake{youtube}->requests;
($res, $doc) = sync($h{youtube}, undef, 'quota exceeded');
is($res->code, 500, "YouTube's quotaExceeded fails the sync");
like($doc->{error} // '', qr/403 \(quotaExceeded\)/, 'naming the reason');
is(scalar($fake{youtube}->requests) - $from, 1, 'after one call: a spent quota is not retried');
is(used(), $before, 'refunded');

# A platform slower than http_timeout (3 s): each attempt gives up, and
# the job fails saying so.
$fake{youtube}->mode(page_size => 2, delay => 5);
($res, $doc) = sync($h{youtube}, undef, 'too slow');
is($res->code, 500, 'a platform that does not answer within http_timeout fails the sync');
like($doc->{error} // '', qr/YouTube did not answer/, 'saying it did not answer');
is(used(), $before, 'refunded');
is(scalar(grep { !$_->{deleted_at} } values %{ rows($h{youtube}) }), 4, 'and nothing is deleted');

# A slow platform (within http_timeout): the job waits for it, and
# meanwhile the handle is syncing.
$fake{youtube}->mode(page_size => 2, delay => 1);
($res, $doc) = $ngx->call('POST', '/functions/v1/sync-platform', token => $tokA, body => { handleId => $h{youtube} });
is($res->code, 202, 'a sync is accepted') or diag $res->as_string;
my $slow = $doc->{job_id};
my ($res2, $doc2) = $ngx->call('POST', '/functions/v1/sync-platform', token => $tokA, body => { handleId => $h{youtube} });
is($res2->code, 409, 'a second sync of the same handle while it runs: 409');
is($doc2->{code}, 'already_syncing', 'already_syncing');

# What the running job holds: its descriptor's lock, no worker socket, and
# no pipe but the one to its own child (the keys' pipe is read and closed).
my ($sup, $child) = SV::Test::job_pids($slow);
ok($sup && $child, 'the sync job runs (supervisor and child)');
like((slurp_file("/proc/$sup/cmdline") // '') =~ s/\0/ /gr, qr/--vault-fd 4/, 'it was given the keys on descriptor 4');
my %worker_sock;
for my $w ($pool->worker_pids) {
    $worker_sock{ readlink($_) // '' } = 1 for grep { (readlink($_) // '') =~ /^socket:/ } glob("/proc/$w/fd/*");
}
# The child is found the moment it is forked, when it and its supervisor
# still hold both ends of their pipe for an instant (each closes its
# unused end first thing): wait for that, so what is checked is what
# they keep.
wait_until(sub {
    !grep { (grep { (readlink($_) // '') =~ /^pipe:/ } glob("/proc/$_/fd/*")) > 1 } $sup, $child
}, 5);
for my $pair ([$sup, 'supervisor'], [$child, 'child']) {
    my @fds = map { readlink($_) // '' } glob("/proc/$pair->[0]/fd/*");
    is(scalar(grep { $worker_sock{$_} } @fds), 0, "the $pair->[1] holds none of the workers' sockets");
    my @pipes = grep { /^pipe:/ } @fds;
    is(scalar @pipes, 1, "the $pair->[1] holds one pipe (to its supervisor or child), not the keys' pipe")
        or diag join ' ', @fds;
}
my @sp = grep { /^pipe:/ } map { readlink($_) // '' } glob("/proc/$sup/fd/*");
my @cp = grep { /^pipe:/ } map { readlink($_) // '' } glob("/proc/$child/fd/*");
is($sp[0], $cp[0], 'and it is the same pipe');
if ($as_user) {
    my ($uid) = (slurp_file("/proc/$sup/status") // '') =~ /^Uid:\s+(\d+)/m;
    is($uid, scalar getpwnam($as_user), "the job runs as $as_user, who cannot read the key file");
    ok(!-r $x->key_file || $uid != 0, 'the key file is root-only');
}
($res, $doc) = $ngx->call('GET', "/functions/v1/jobs/$slow?wait=50", token => $tokA);
is($doc->{status}, 'completed', 'the slow sync completed') or diag explain $doc;
$fake{youtube}->mode(page_size => 2);

# --- no credential -------------------------------------------------------------------------
$before = used($B);
($res, $doc) = sync($hB, $tokB, 'no credential');
is($res->code, 500, 'a user without a YouTube connection: the sync fails');
like($doc->{error} // '', qr/no youtube account is connected/, 'saying the account is not connected');
my $a = audit($doc->{job_id});
is($a->{job_status}, 'failed', 'its audit row says failed');
like($a->{job_error}, qr/connect it/, 'and tells the user what to do');
is(used($B), $before, 'the quota is refunded');

# --- an inactive credential ----------------------------------------------------------------
$su->do(q{UPDATE platform_credentials SET is_active = false WHERE user_id = ?
    AND platform_id = (SELECT id FROM platforms WHERE name = 'tiktok')}, undef, $A);
($res, $doc) = sync($h{tiktok}, undef, 'inactive credential');
is($res->code, 500, 'an inactive credential: the sync fails');
like($doc->{error} // '', qr/connect the account again/, 'asking to connect again');

# No token leaked into the log or an audit row.
my $log = $pool->log;
my @tokens = $oauth->tokens;
is(scalar(grep { index($log, $_) >= 0 } @tokens), 0, 'no token in the log');
my ($audit_text) = $su->selectrow_array(q{SELECT string_agg(coalesce(job_result::text, '') || coalesce(job_error, ''), ' ') FROM audit_log});
is(scalar(grep { index($audit_text, $_) >= 0 } @tokens), 0, 'no token in an audit row');

done_testing;
