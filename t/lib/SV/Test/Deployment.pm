package SV::Test::Deployment;

# The checks every deployment must pass, whatever is in front (nginx,
# Apache with mod_proxy_fcgi, mod_fcgid or plain CGI): run through any
# object with request(METHOD, PATH, headers => {}, body => '') and json().
#
#   SV::Test::Deployment::core_checks($front, name => 'apache cgi',
#       body_limit => 1024, front_limit => 1048576);
#
# With prefix => '/api' every path is sent below it (the API served from
# a folder of a site, base_path = /api).
#
# They are what a user would try first: the health check, signing up and
# logging in, a write, a read that row-level security limits to the
# caller's rows, the Authorization header reaching the server, an unknown
# path (404) and an oversized body (413, from the server below the web
# server's own limit, and from the web server above it).
#
# With job => 1 (the configuration points ai_base_url at a fake that
# answers a title containing "slow" after a few seconds, job_program at
# streamvibe-job and job_spool_dir somewhere the server may write), a job
# is accepted (202 at once), its process outlives the request that
# accepted it (with cgi => 1: no program of the web server's is left
# while the job still runs), and it ends with exactly one completed
# audit row, read through the front as the user.

use strict;
use warnings;

use Test::More;
use JSON::PP ();

my $JSON = JSON::PP->new->canonical;
my $counter = 0;

sub core_checks {
    my ($front, %opt) = @_;
    my $name = $opt{name} // 'deployment';
    my $run = sprintf '%d%d', $$, ++$counter;
    my $prefix = $opt{prefix} // '';
    my $req = sub {
        my ($method, $path, $body, %h) = @_;
        my $res = $front->request($method, "$prefix$path", headers => { %h },
            defined $body ? (body => ref $body ? $JSON->encode($body) : $body) : ());
        return ($res, $front->json($res));
    };

    subtest "$name: core checks" => sub {
        # healthz
        my ($res, $doc) = $req->('GET', '/healthz');
        is($res->code, 200, 'GET /healthz: 200') or diag $res->as_string;
        is(($doc // {})->{status}, 'ok', 'status ok');
        is(($doc // {})->{database}, 'ok', 'database ok');

        # sign-up and log-in of two users
        my %token;
        for my $who (qw(alice bob)) {
            my $email = "$who.$run\@example.com";
            ($res, $doc) = $req->('POST', '/auth/v1/signup', { email => $email, password => "pw of $who!" });
            is($res->code, 200, "$who signs up") or diag $res->as_string;
            ($res, $doc) = $req->('POST', '/auth/v1/token?grant_type=password',
                { email => $email, password => "pw of $who!" });
            is($res->code, 200, "$who logs in") or diag $res->as_string;
            $token{$who} = ($doc // {})->{access_token};
            ok($token{$who}, "$who has an access token");
        }
        ($res, $doc) = $req->('POST', '/auth/v1/token?grant_type=password',
            { email => "alice.$run\@example.com", password => 'wrong' });
        is($res->code, 400, 'a wrong password: 400') or diag $res->as_string;

        # The Authorization header reaches the server (Apache drops it
        # unless told otherwise).
        my %alice = (Authorization => "Bearer $token{alice}");
        my %bob = (Authorization => "Bearer $token{bob}");
        ($res, $doc) = $req->('GET', '/auth/v1/user', undef, %alice);
        is($res->code, 200, 'GET /auth/v1/user with the token: 200 (Authorization passed through)')
            or diag $res->as_string;
        is(($doc // {})->{email}, "alice.$run\@example.com", 'and it is alice');
        ($res) = $req->('GET', '/auth/v1/user');
        is($res->code, 401, 'without the token: 401');

        # a write: alice adds a public and a private handle
        ($res, $doc) = $req->('GET', '/rest/v1/platforms?select=id&name=eq.youtube');
        my $yt = ref $doc eq 'ARRAY' && @$doc ? $doc->[0]{id} : undef;
        ok($yt, 'anon reads the platforms') or diag $res->as_string;
        my %hid;
        for my $vis (qw(public private)) {
            ($res, $doc) = $req->('POST', '/rest/v1/account_handles',
                { platform_id => $yt, handle => "$vis$run", visibility => $vis }, %alice,
                Prefer => 'return=representation');
            is($res->code, 201, "alice adds a $vis handle: 201") or diag $res->as_string;
            $hid{$vis} = ref $doc eq 'ARRAY' ? $doc->[0]{id} : undef;
            ok($hid{$vis}, 'the new row comes back');
        }

        # a read that row-level security limits: the private handle is
        # alice's alone
        my $both = "/rest/v1/account_handles?select=id&order=handle&id=in.($hid{private},$hid{public})";
        my $ids = sub { [map { $_->{id} } @{ ref $_[0] eq 'ARRAY' ? $_[0] : [] }] };
        ($res, $doc) = $req->('GET', $both, undef, %alice);
        is($res->code, 200, 'alice reads her handles');
        is_deeply($ids->($doc), [$hid{private}, $hid{public}], 'she sees both');
        ($res, $doc) = $req->('GET', $both, undef, %bob);
        is($res->code, 200, 'bob reads them');
        is_deeply($ids->($doc), [$hid{public}], 'he sees the public one only');
        ($res, $doc) = $req->('GET', $both);
        is_deeply($ids->($doc), [$hid{public}], 'so does anon');
        ($res, $doc) = $req->('PATCH', "/rest/v1/account_handles?id=eq.$hid{public}", { display_name => 'taken' },
            %bob, Prefer => 'return=representation');
        is_deeply($doc, [], 'bob cannot change alice\'s handle') or diag $res->as_string;

        # 404, in PostgREST's shape
        ($res, $doc) = $req->('GET', '/no/such/path');
        is($res->code, 404, 'unknown path: 404');
        ok(ref $doc eq 'HASH' && defined $doc->{code} && defined $doc->{message}, 'a JSON error body')
            or diag $res->as_string;

        # 413: the server's own below the front's limit, the front's above
        if (my $limit = $opt{body_limit}) {
            ($res, $doc) = $req->('POST', '/rest/v1/account_handles', 'x' x ($limit + 1), %alice);
            is($res->code, 413, "a body of body_limit + 1 bytes: 413") or diag $res->as_string;
            ok(ref $doc eq 'HASH' && defined $doc->{message}, 'from the server (JSON)');
        }
        if (my $front_limit = $opt{front_limit}) {
            ($res) = $req->('POST', '/rest/v1/account_handles', 'x' x ($front_limit + 1), %alice);
            is($res->code, 413, 'over the web server\'s limit: 413 from it');
        }
        _job_checks($front, $req, \%opt, \%alice, $hid{public}, $run) if $opt{job};

        ($res, $doc) = $req->('GET', '/healthz');
        is($res->code, 200, 'still healthy afterwards');
    };
}

sub _job_processes {
    my ($job_id) = @_;
    return grep { ((SV::Test::slurp_file("/proc/$_/cmdline") // '') =~ /\Q$job_id\E/) }
        map { s{^/proc/}{}r } glob('/proc/[0-9]*');
}

sub _job_checks {
    my ($front, $req, $opt, $alice, $handle, $run) = @_;
    my ($res, $doc) = $req->('POST', '/rest/v1/handle_content?select=id',
        { handle_id => $handle, platform_content_id => "v$run", title => 'a slow video' }, %$alice,
        Prefer => 'return=representation');
    is($res->code, 201, 'alice adds a video') or diag $res->as_string;
    my $content = ref $doc eq 'ARRAY' ? $doc->[0]{id} : undef;
    ($res, $doc) = $req->('POST', '/functions/v1/enhance-ai', { contentId => $content }, %$alice);
    is($res->code, 202, 'enhance-ai is accepted: 202') or diag $res->as_string;
    my $job = ($doc // {})->{job_id};
    ok($job, 'with a job id');
    ok(_job_processes($job), 'the job runs after the request that accepted it was answered');
    if ($opt->{cgi}) {
        is_deeply([$front->app_pids], [], 'while no CGI program is left running');
    }
    ($res, $doc) = $req->('GET', "/functions/v1/jobs/$job?wait=30", undef, %$alice);
    is($res->code, 200, 'alice waits for it through the front') or diag $res->as_string;
    is(($doc // {})->{status}, 'completed', 'it completed') or diag explain $doc;
    ($res, $doc) = $req->('GET', "/rest/v1/audit_log?select=job_status&job_id=eq.$job", undef, %$alice);
    is_deeply($doc, [{ job_status => 'completed' }], 'one completed audit row, read as alice')
        or diag $res->as_string;
    ($res, $doc) = $req->('GET', "/rest/v1/ai_content_suggestions?select=content_id&content_id=eq.$content",
        undef, %$alice);
    is(scalar @{ ref $doc eq 'ARRAY' ? $doc : [] }, 1, 'and the suggestion is stored');
    ok(SV::Test::wait_until(sub { !_job_processes($job) }, 10), 'its process is gone');
}

1;
