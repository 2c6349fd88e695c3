#!/usr/bin/perl
# The same binary outside its own pool: as a plain CGI program, as a CGI
# under fcgiwrap behind nginx, and as a FastCGI server on an inherited
# socket under spawn-fcgi behind nginx.

use strict;
use warnings;
use Test::More;
use SV::Test qw(:DEFAULT run_command spawn_process stop_process pid_alive
    register_cleanup find_program);
use SV::Test::Nginx;
use SV::Test::Stack;

my $pg = SV::Test::Stack->new(pool => 0)->pg;
my $bin = sv_builddir() . '/streamvibe-fcgi';
my $dburl = $pg->conninfo(user => 'authenticator');

# Run the binary as CGI; returns (exit, status, headers{lc}, body, stderr).
sub cgi {
    my ($method, $uri, %opt) = @_;
    my ($path, $query) = split /\?/, $uri, 2;
    my %env = (
        GATEWAY_INTERFACE => 'CGI/1.1',
        SERVER_PROTOCOL   => 'HTTP/1.1',
        SERVER_SOFTWARE   => 'sv-test',
        SERVER_NAME       => 'localhost',
        SERVER_PORT       => '80',
        REQUEST_METHOD    => $method,
        REQUEST_URI       => $uri,
        PATH_INFO         => $path,
        SCRIPT_NAME       => '',
        QUERY_STRING      => $query // '',
        REMOTE_ADDR       => '127.0.0.1',
        REMOTE_PORT       => '40000',
        STREAMVIBE_DATABASE_URL => $dburl,
        STREAMVIBE_CONFIG => undef,
        CONTENT_LENGTH    => defined $opt{body} ? length $opt{body} : undef,
        CONTENT_TYPE      => defined $opt{body} ? 'application/json' : undef,
        HTTP_X_REQUEST_ID => $opt{request_id},
    );
    my ($code, $stdout, $stderr) = run_command([$bin], env => \%env, timeout => 30,
        (defined $opt{body} ? (stdin_data => $opt{body}) : ()));
    my ($head, $body) = split /\r?\n\r?\n/, $stdout, 2;
    my %h;
    for (split /\r?\n/, $head // '') {
        $h{ lc $1 } = $2 if /^([^:]+):\s*(.*)$/;
    }
    return ($code, $stdout, \%h, $body // '', $stderr);
}

# --- plain CGI ------------------------------------------------------------
{
    my ($code, $stdout, $h, $body, $stderr) = cgi('GET', '/healthz?verbose=1', request_id => 'cgi-1');
    is($code, 0, 'CGI run exits 0') or diag $stderr;
    like($stdout, qr/\AStatus: 200\b/, 'stdout begins with "Status: 200"') or diag $stdout;
    like($h->{'content-type'} // '', qr{^application/json}, 'Content-Type: application/json');
    my $doc = SV::Test::Nginx->json($body);
    is(ref $doc && $doc->{status}, 'ok', 'body: status ok') or diag $body;
    is($h->{'x-request-id'}, 'cgi-1', 'request id echoed in CGI mode');

    ($code, $stdout, $h, $body, $stderr) = cgi('POST', '/healthz', body => '{}');
    is($code, 0, 'CGI POST exits 0') or diag $stderr;
    like($stdout, qr/\AStatus: 405\b/, 'CGI POST /healthz: Status: 405') or diag $stdout;
    like($h->{allow} // '', qr/GET/, 'Allow header');

    ($code, $stdout) = cgi('GET', '/nope');
    like($stdout, qr/\AStatus: 404\b/, 'CGI unknown path: 404');
}

SKIP: {
    skip 'nginx not installed', 7 unless SV::Test::Nginx::available();

    # --- fcgiwrap: the binary as a CGI program behind nginx -----------------
    SKIP: {
        # One process (no -c): with -c N its children outlive a SIGTERM to the parent.
        my $fcgiwrap = find_program('fcgiwrap', '/usr/sbin') or skip 'fcgiwrap not installed', 3;
        my $dir = sv_tempdir();
        my $sock = "$dir/fcgiwrap.sock";
        my $pid = spawn_process([$fcgiwrap, '-s', "unix:$sock"],
            stdout => "$dir/fcgiwrap.log", stderr => "$dir/fcgiwrap.log", umask => 0);
        register_cleanup(sub { stop_process($pid, signals => ['TERM', 'KILL'], timeout => 5, children => 1) });
        ok(wait_until(sub { -S $sock }, 10), 'fcgiwrap socket is up');
        chmod 0666, $sock;

        (my $q = $dburl) =~ s/"/\\"/g;
        my $ngx = SV::Test::Nginx->new(conf => {
            socket        => $sock,
            fastcgi_extra => qq{            fastcgi_param SCRIPT_FILENAME "$bin";\n}
                           . qq{            fastcgi_param STREAMVIBE_DATABASE_URL "$q";\n},
        });
        $ngx->start;
        my $res = $ngx->request('GET', '/healthz');
        is($res->code, 200, 'fcgiwrap + CGI binary: GET /healthz 200') or diag $res->as_string, $ngx->error_log;
        is(($ngx->json($res) // {})->{status}, 'ok', 'fcgiwrap: status ok');
        $ngx->stop;
        stop_process($pid, signals => ['TERM', 'KILL'], timeout => 5, children => 1);
    }

    # --- spawn-fcgi: inherited listening socket on fd 0 ----------------------
    SKIP: {
        my $spawn = find_program('spawn-fcgi') or skip 'spawn-fcgi not installed', 4;
        my $dir = sv_tempdir();
        my $sock = "$dir/sv.sock";
        my $pid = spawn_process([$spawn, '-n', '-s', $sock, '-M', '0666', '--', $bin],
            stdout => "$dir/spawn.log", stderr => "$dir/spawn.log",
            env => { STREAMVIBE_DATABASE_URL => $dburl, STREAMVIBE_CONFIG => undef });
        register_cleanup(sub { stop_process($pid, signals => ['TERM', 'KILL'], timeout => 5, children => 1) });
        ok(wait_until(sub { -S $sock }, 10), 'spawn-fcgi socket is up')
            or diag SV::Test::slurp_file("$dir/spawn.log");
        my $ngx = SV::Test::Nginx->new(conf => { socket => $sock });
        $ngx->start;
        my @codes = map { $ngx->request('GET', '/healthz')->code } 1 .. 5;
        is(scalar(grep { $_ == 200 } @codes), 5, 'spawn-fcgi + FastCGI binary: GET /healthz 200 x5')
            or diag "codes: @codes\n", $ngx->error_log, SV::Test::slurp_file("$dir/spawn.log");
        ok(pid_alive($pid), 'the FastCGI process is still the same one (pid kept)');
        $ngx->stop;
        stop_process($pid, signals => ['TERM', 'KILL'], timeout => 10);
        ok(!pid_alive($pid), 'SIGTERM stops it');
    }
}

done_testing;
