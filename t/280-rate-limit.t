#!/usr/bin/perl
# Per-caller rate limits in the pool's shared memory, through nginx:
# a burst spread over several client processes (and so over all pool
# workers) is cut at the configured rate, every answer carries
# RateLimit-Limit/-Remaining/-Reset and a refusal is 429 + Retry-After
# in the route's error dialect; users do not share a bucket, anonymous
# callers are counted by address (the trusted-proxy header only from a
# trusted proxy), classes are separate, the service role is not
# limited, and a reload changes the rates.
#
# Tolerance: with a rate of 1 request per minute and a burst of 10, a
# burst of 60 requests sent within T seconds lets through 10 + floor(T /
# 60) requests, so exactly 10 unless the burst takes a minute; T is
# measured. (A slow rate keeps the counts exact on a loaded machine.)

use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);
use SV::Test;
use SV::Test::Stack;

my $secret = 'rate-limit-secret-' . ('r' x 32);
# A worker may multiplex every connection nginx opens, so on a quiet
# machine one process could serve a whole burst; recycling each worker
# after 8 requests makes the burst cross several processes for certain.
my $s = SV::Test::Stack->new(workers => 3, nginx_conf => { worker_processes => 2 }, conf => {
    jwt_secret => $secret, max_requests => 8,
    rate_limit_reads => '1r/m', rate_limit_reads_burst => 10,
    rate_limit_writes => '1r/s', rate_limit_writes_burst => 2,
    rate_limit_auth => '1r/m', rate_limit_auth_burst => 3,
});
my ($pool, $ngx, $su) = ($s->pool, $s->ngx, $s->su);

my $A = $s->user('a@example.com');
my $B = $s->user('b@example.com');
my %A = %{ $s->auth($A) };
my %B = %{ $s->auth($B) };
my %S = %{ $s->service };

sub get { my ($path, %h) = @_; $ngx->request('GET', $path, headers => \%h) }

# --- a burst over every worker ---------------------------------------------
# 6 client processes, each on its own connection, 10 requests each, all
# released at once.
my $dir = sv_tempdir(prefix => 'svrl');
my @kids;
my $go = time + 0.5;
for my $k (1 .. 6) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        require LWP::UserAgent;
        my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 30);
        sleep($go - time) if $go > time;
        open my $fh, '>', "$dir/kid$k" or POSIX::_exit(1);
        for (1 .. 10) {
            my $res = $ngx->request('GET', '/rest/v1/platforms?select=name', headers => \%A, ua => $ua);
            printf {$fh} "%d %s %s %s %s %.3f\n", $res->code, $res->header('RateLimit-Limit') // '-',
                $res->header('RateLimit-Remaining') // '-', $res->header('RateLimit-Reset') // '-',
                $res->header('Retry-After') // '-', time;
        }
        close $fh;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
waitpid($_, 0) for @kids;
my @lines = map { split /\n/, (SV::Test::slurp_file("$dir/kid$_") // '') } 1 .. 6;
is(scalar @lines, 60, '60 answers');
my @ok = grep { /^200 / } @lines;
my @limited = grep { /^429 / } @lines;
my ($last) = sort { $b <=> $a } map { (split ' ')[5] } @lines;
my $elapsed = $last - $go;
my $max = 10 + POSIX::floor($elapsed / 60);
ok(@ok >= 10 && @ok <= $max, sprintf('%d of 60 passed: the burst of 10, + one a minute of the %.2f s the burst took (<= %d)',
    scalar @ok, $elapsed, $max));
is(@ok + @limited, 60, 'every other answer is a 429');
ok(!grep({ (split ' ')[1] ne '10' } @lines), 'RateLimit-Limit: 10 on every answer');
ok(!grep({ (split ' ')[2] ne '0' } @limited), 'RateLimit-Remaining: 0 on every 429');
ok(!grep({ (split ' ')[4] !~ /^[1-9]\d*$/ } @limited), 'Retry-After on every 429');
ok(!grep({ (split ' ')[4] ne '-' } @ok), 'no Retry-After on a 200');
my @remaining = sort { $b <=> $a } map { (split ' ')[2] } @ok;
is($remaining[0], 9, 'the first request left 9');
my %seen;
$seen{$_}++ for @remaining;
ok(!grep({ $seen{$_} > 1 + POSIX::floor($elapsed / 60) } keys %seen), 'each Remaining value handed out once: one bucket for all workers');
my %pids = map { $_ => 1 } ($pool->log =~ /pid=(\d+) event=access[^\n]*path=\/rest\/v1\/platforms/g);
ok(keys %pids >= 2, scalar(keys %pids) . ' worker processes served the burst');

# --- the 429 itself --------------------------------------------------------
my $res = get('/rest/v1/platforms?select=name', %A);
is($res->code, 429, 'A is still limited');
my $doc = $ngx->json($res);
is($doc->{code}, 'SV429', 'PostgREST-shaped error, code SV429');
like($doc->{message}, qr/Too many requests/, 'message');
ok(exists $doc->{details} && exists $doc->{hint}, 'details and hint members');
my $wait = $res->header('Retry-After');
ok($wait > 1 && $wait <= 60, "Retry-After is when the next request is allowed ($wait s of a minute)");

# --- buckets ---------------------------------------------------------------
$res = get('/rest/v1/platforms?select=name', %B);
is($res->code, 200, 'B is not limited by A');
is($res->header('RateLimit-Remaining'), 9, "B's own bucket is full");
sub write_a {
    return $ngx->request('POST', '/rest/v1/account_handles', headers => { %A, Prefer => 'return=minimal' },
        body => '{"platform_id": "00000000-0000-0000-0000-000000000000", "handle": "x"}');
}
$res = write_a();
isnt($res->code, 429, 'writes have their own bucket') or diag $res->content;
is($res->header('RateLimit-Limit'), 2, 'with their own limit');
my @w = map { write_a()->code } 1 .. 5;
ok(grep({ $_ == 429 } @w), 'writes are limited too (1r/s, burst 2)');
$res = write_a();
$res = write_a() until $res->code == 429;
$wait = $res->header('Retry-After');
sleep $wait + 0.05;
$res = write_a();
isnt($res->code, 429, "after Retry-After ($wait s) A may write again");
for (1 .. 20) {
    $res = get('/rest/v1/platforms?select=name', %S);
    last if $res->code != 200;
}
is($res->code, 200, '20 quick reads with the service role key: never limited');
ok(!defined $res->header('RateLimit-Limit'), 'and no RateLimit headers');
$res = get('/healthz');
ok(!defined $res->header('RateLimit-Limit'), '/healthz is not limited');

# --- anonymous callers: by address ------------------------------------------
my %anon = (apikey => $s->jwt(role => 'anon'));
$res = get('/rest/v1/platforms?select=name', %anon) for 1 .. 10;
is($res->code, 200, 'ten anonymous reads from 127.0.0.1');
$res = get('/rest/v1/platforms?select=name', %anon, 'X-Forwarded-For' => '198.51.100.7');
is($res->code, 429, 'the 11th is refused, whatever X-Forwarded-For says (127.0.0.1 is not a trusted proxy)');

$pool->conf(trusted_proxies => '127.0.0.1');
$pool->conf(rate_limit_reads_burst => 9);
$pool->reload;
ok(wait_until(sub { my $l = $pool->log; $l =~ /event=reload generation=2/ }), 'reloaded');
# Until the old workers are gone, nginx may still reach one of them.
my $probe = 0;
ok(wait_until(sub { !grep { (get('/rest/v1/platforms?select=name', %anon, 'X-Forwarded-For' => '198.18.0.' . ++$probe)
    ->header('RateLimit-Limit') // 0) != 9 } 1 .. 5 }, 20), 'only the new workers answer');
$res = get('/rest/v1/platforms?select=name', %anon, 'X-Forwarded-For' => '198.51.100.7');
is($res->code, 200, 'behind a trusted proxy the header names the client: a new bucket');
is($res->header('RateLimit-Limit'), 9, 'the reloaded burst is in force');
$res = get('/rest/v1/platforms?select=name', %anon, 'X-Forwarded-For' => '6.6.6.6, 198.51.100.7');
is($res->header('RateLimit-Remaining'), 7, 'a spoofed left part is ignored: same client');
$res = get('/rest/v1/platforms?select=name', %anon, 'X-Forwarded-For' => '2001:db8:1:2::1');
my $v6 = $res->header('RateLimit-Remaining');
$res = get('/rest/v1/platforms?select=name', %anon, 'X-Forwarded-For' => '2001:db8:1:2:ffff::9');
is($res->header('RateLimit-Remaining'), $v6 - 1, 'IPv6 clients are counted by /64');
like($res->header('RateLimit-Reset'), qr/^\d+$/, 'Reset in seconds');
ok($res->header('RateLimit-Reset') > 60, 'Reset > 60 s after 2 requests at 1r/m');

# --- auth routes answer in GoTrue's dialect -----------------------------------
for (1 .. 3) {
    $res = $ngx->request('POST', '/auth/v1/token?grant_type=password', headers => { %anon, 'X-Forwarded-For' => '203.0.113.5' },
        body => '{"email": "nobody@example.com", "password": "wrong password"}');
}
is($res->code, 400, 'three failed logins: plain 400s');
$res = $ngx->request('POST', '/auth/v1/token?grant_type=password', headers => { %anon, 'X-Forwarded-For' => '203.0.113.5' },
    body => '{"email": "nobody@example.com", "password": "wrong password"}');
is($res->code, 429, 'the 4th auth request from that client: 429');
$doc = $ngx->json($res);
is($doc->{code}, 429, 'GoTrue shape: code');
is($doc->{error_code}, 'over_request_rate_limit', 'GoTrue error_code');
ok($res->header('Retry-After') >= 1, 'Retry-After');
$res = $ngx->request('OPTIONS', '/rest/v1/platforms', headers => { Origin => 'http://app.example', 'Access-Control-Request-Method' => 'GET' });
$res = get('/rest/v1/platforms?select=name', %B, Origin => 'http://app.example');
like($res->header('Access-Control-Expose-Headers') // '', qr/RateLimit-Remaining/, 'browsers may read the RateLimit headers');

$ngx->stop;
$pool->stop;
done_testing;
