#!/usr/bin/perl
# A fake OAuth 2.0 provider for the tests, answering in the format of
# RFC 6749/7636/7009 as Google, TikTok and Instagram do:
#
#   GET  /authorize   approves at once: 302 to redirect_uri?code=...&state=...
#                     (or ?error=access_denied when the mode says deny)
#   POST /token       grant_type=authorization_code (checks the client, the
#                     code, its redirect_uri and the PKCE verifier) and
#                     grant_type=refresh_token; errors as {"error": "invalid_grant"}
#   POST /revoke      token=...; 200, or the mode's failure
#
# Usage: oauth-provider.pl DIR CLIENT_ID CLIENT_SECRET. It binds a free
# loopback port and writes it to DIR/port. Its state lives in DIR, so the
# test reads what happened there: tokens.log (every token it issued, one
# a line: the leak tests search for them), calls.log (one line a token
# endpoint call: "<grant> <outcome>"), exchanges.log (the redirect_uri
# of each code exchange, JSON), revoked.log, requests.log; and the
# test steers it through DIR/mode.json: {"token": "ok"|"invalid_grant"|
# "500"|"slow", "refresh": same, "revoke": "ok"|"500", "authorize":
# "ok"|"deny", "delay": seconds, "expires_in": N, "rotate_refresh": 0|1,
# "client_id_param": "client_id"|"client_key", "huge": 0|1}.
# Each connection is served by a child process; the parent reaps them.
use strict;
use warnings;
use IO::Socket::INET;
use Digest::SHA qw(sha256);
use MIME::Base64 qw(encode_base64url);
use JSON::PP;
use POSIX ();
use Fcntl qw(:flock);
use Time::HiRes qw(sleep);

my ($dir, $client_id, $client_secret) = @ARGV;
die "usage: $0 DIR CLIENT_ID CLIENT_SECRET\n" unless defined $client_secret;
my $server = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64,
    ReuseAddr => 1, Proto => 'tcp') or die "listen: $!";
mkdir "$dir/codes";
mkdir "$dir/refresh";
open my $pf, '>', "$dir/port.tmp" or die;
print {$pf} $server->sockport;
close $pf;
rename "$dir/port.tmp", "$dir/port";

$SIG{CHLD} = sub { 1 while waitpid(-1, POSIX::WNOHANG()) > 0 };
$SIG{TERM} = sub { exit 0 };

sub append {
    my ($file, $line) = @_;
    open my $fh, '>>', "$dir/$file" or return;
    flock $fh, LOCK_EX;
    print {$fh} "$line\n";
    close $fh;
}
sub mode {
    open my $fh, '<', "$dir/mode.json" or return {};
    local $/;
    my $m = eval { decode_json(<$fh>) } // {};
    return $m;
}
sub rnd { my $n = shift; my $s = ''; open my $u, '<', '/dev/urandom'; read $u, $s, $n; close $u; unpack 'H*', $s }
sub unesc { my $s = shift // ''; $s =~ tr/+/ /; $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge; $s }
sub form { my %f; for (split /&/, shift // '') { my ($k, $v) = split /=/, $_, 2; $f{unesc($k)} = unesc($v) } \%f }
sub esc { my $s = shift; $s =~ s/([^A-Za-z0-9\-._~])/sprintf '%%%02X', ord $1/ge; $s }

sub respond {
    my ($c, $status, $headers, $body) = @_;
    $body //= '';
    my %reason = (200 => 'OK', 302 => 'Found', 400 => 'Bad Request', 401 => 'Unauthorized',
        404 => 'Not Found', 500 => 'Internal Server Error', 503 => 'Service Unavailable');
    my $h = "HTTP/1.1 $status " . ($reason{$status} // 'X') . "\r\nConnection: close\r\n"
        . "Content-Length: " . length($body) . "\r\n";
    $h .= "$_: $headers->{$_}\r\n" for sort keys %$headers;
    print {$c} "$h\r\n$body";
}
sub json_answer {
    my ($c, $status, $doc) = @_;
    respond($c, $status, { 'Content-Type' => 'application/json', 'Cache-Control' => 'no-store' }, encode_json($doc));
}

sub issue_tokens {
    my ($m, $scope, $with_refresh) = @_;
    my $at = 'fake-at-' . rnd(16);
    append('tokens.log', $at);
    my %doc = (access_token => $at, token_type => 'Bearer', expires_in => $m->{expires_in} // 3600,
        scope => $scope // 'read');
    if ($with_refresh) {
        my $rt = 'fake-rt-' . rnd(16);
        append('tokens.log', $rt);
        open my $fh, '>', "$dir/refresh/$rt"; close $fh;
        $doc{refresh_token} = $rt;
    }
    return \%doc;
}

sub client_ok {
    my ($f) = @_;
    my $id = $f->{client_id} // $f->{client_key} // '';
    return $id eq $client_id && ($f->{client_secret} // '') eq $client_secret;
}

sub failure {
    my ($c, $how, $grant) = @_;
    append('calls.log', "$grant $how") if $how ne 'ok';
    if ($how eq '500') { respond($c, 500, { 'Content-Type' => 'text/plain' }, 'upstream exploded'); return 1 }
    if ($how eq 'invalid_grant') {
        json_answer($c, 400, { error => 'invalid_grant', error_description => 'Token has been expired or revoked.' });
        return 1;
    }
    return 0;
}

sub serve {
    my ($c) = @_;
    local $/ = "\r\n";
    my $line = <$c> // return;
    my ($method, $target) = $line =~ m{^(\S+)\s+(\S+)} or return;
    my %h;
    while (my $l = <$c>) {
        last if $l eq "\r\n";
        $h{lc $1} = $2 if $l =~ /^([^:]+):\s*(.*?)\r\n$/;
    }
    my $body = '';
    read($c, $body, $h{'content-length'}) if $h{'content-length'};
    my ($path, $query) = split /\?/, $target, 2;
    append('requests.log', "$method $path ua=" . ($h{'user-agent'} // '-'));
    my $m = mode();

    if ($method eq 'GET' && $path eq '/authorize') {
        my $q = form($query);
        my $id = $q->{client_id} // $q->{client_key} // '';
        return respond($c, 400, {}, 'unknown client') unless $id eq $client_id;
        my $ru = $q->{redirect_uri} // return respond($c, 400, {}, 'no redirect_uri');
        my $sep = $ru =~ /\?/ ? '&' : '?';
        if (($m->{authorize} // 'ok') eq 'deny') {
            return respond($c, 302, { Location => "$ru${sep}error=access_denied&state=" . esc($q->{state} // '') });
        }
        my $code = 'code-' . rnd(12);
        open my $fh, '>', "$dir/codes/$code";
        print {$fh} encode_json({ redirect_uri => $ru, challenge => $q->{code_challenge},
            method => $q->{code_challenge_method}, scope => $q->{scope} });
        close $fh;
        append('authorize.log', encode_json($q));
        return respond($c, 302, { Location => "$ru${sep}code=$code&state=" . esc($q->{state} // '') });
    }
    if ($method eq 'POST' && $path eq '/token') {
        my $f = form($body);
        my $grant = $f->{grant_type} // '';
        sleep($m->{delay}) if $m->{delay};
        if ($m->{huge}) {
            append('calls.log', "$grant huge");
            return json_answer($c, 200, { access_token => 'x' x 600000 });
        }
        unless (client_ok($f)) {
            append('calls.log', "$grant invalid_client");
            return json_answer($c, 401, { error => 'invalid_client' });
        }
        if ($grant eq 'authorization_code') {
            append('exchanges.log', encode_json({ redirect_uri => $f->{redirect_uri} }));
            return if failure($c, $m->{token} // 'ok', $grant);
            my $code = $f->{code} // '';
            my $file = "$dir/codes/$code";
            my $rec = -f $file && $code =~ /^code-[0-9a-f]+$/ ? do { local $/; open my $fh, '<', $file; decode_json(<$fh>) } : undef;
            unlink $file;    # single use
            if (!$rec || ($f->{redirect_uri} // '') ne $rec->{redirect_uri}) {
                append('calls.log', "$grant bad_code");
                return json_answer($c, 400, { error => 'invalid_grant', error_description => 'Bad code.' });
            }
            if (defined $rec->{challenge}) {
                my $v = $f->{code_verifier} // '';
                if (($rec->{method} // '') ne 'S256' || encode_base64url(sha256($v)) ne $rec->{challenge}) {
                    append('calls.log', "$grant bad_verifier");
                    return json_answer($c, 400, { error => 'invalid_grant', error_description => 'PKCE verification failed.' });
                }
            }
            append('calls.log', "$grant ok");
            return json_answer($c, 200, issue_tokens($m, $rec->{scope}, 1));
        }
        if ($grant eq 'refresh_token') {
            return if failure($c, $m->{refresh} // 'ok', $grant);
            my $rt = $f->{refresh_token} // '';
            if ($rt !~ /^fake-rt-[0-9a-f]+$/ || !-f "$dir/refresh/$rt") {
                append('calls.log', "$grant unknown_refresh_token");
                return json_answer($c, 400, { error => 'invalid_grant', error_description => 'Token has been expired or revoked.' });
            }
            append('calls.log', "$grant ok");
            my $doc = issue_tokens($m, undef, $m->{rotate_refresh});
            unlink "$dir/refresh/$rt" if $m->{rotate_refresh};
            delete $doc->{scope};
            return json_answer($c, 200, $doc);
        }
        append('calls.log', "$grant unsupported");
        return json_answer($c, 400, { error => 'unsupported_grant_type' });
    }
    if ($method eq 'POST' && $path eq '/revoke') {
        my $f = form($body);
        my $how = $m->{revoke} // 'ok';
        append('revoked.log', ($how eq 'ok' ? '' : "failed ") . ($f->{token} // ''));
        return respond($c, 500, {}, 'revoke exploded') if $how eq '500';
        unlink "$dir/refresh/$f->{token}" if ($f->{token} // '') =~ /^fake-rt-[0-9a-f]+$/;
        return respond($c, 200, { 'Content-Type' => 'application/json' }, '{}');
    }
    respond($c, 404, {}, 'not found');
}

while (1) {
    my $c = $server->accept or next;
    my $pid = fork;
    if (defined $pid && $pid == 0) {
        close $server;
        serve($c);
        close $c;
        POSIX::_exit(0);
    }
    close $c;
}
