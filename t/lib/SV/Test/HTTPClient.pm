package SV::Test::HTTPClient;

# Requests to a front server started by a test (SV::Test::Nginx,
# SV::Test::Apache): both inherit these, and give url($path).
#
#   my $res = $ngx->request('GET', '/rest/v1/t', headers => {...});
#   my ($res, $doc) = $ngx->call('POST', '/auth/v1/signup', body => {...}, token => $jwt);

use strict;
use warnings;

use SV::Test ();

# One keep-alive user agent per server, never through a proxy from the
# environment, following no redirect (the tests look at them).
sub ua {
    my ($self) = @_;
    return $self->{ua} //= do {
        require LWP::UserAgent;
        my $ua = LWP::UserAgent->new(timeout => 30, keep_alive => 4, env_proxy => 0,
            agent => 'sv-test/1', max_redirect => 0);
        $ua->no_proxy;
        $ua->proxy([qw(http https)], undef);
        $ua;
    };
}

# $srv->request(METHOD, PATH, headers => {...}, body => '...', ua => $ua)
# -> HTTP::Response. A body without a Content-Type goes as JSON.
sub request {
    my ($self, $method, $path, %opt) = @_;
    require HTTP::Request;
    my $req = HTTP::Request->new($method, $self->url($path));
    my $h = $opt{headers} // {};
    $req->header($_ => $h->{$_}) for keys %$h;
    if (defined $opt{body}) {
        $req->content($opt{body});
        $req->header('Content-Length' => length $opt{body});
        $req->header('Content-Type' => 'application/json') unless $req->header('Content-Type');
    }
    my $ua = $opt{ua} // $self->ua;
    # A kept-alive connection the server closes just as a request goes out
    # on it ends in "Server closed connection without sending any data
    # back", and the client cannot tell whether the server had read and
    # applied the request before the connection went. A safe method
    # (GET, HEAD, OPTIONS) is then sent again, once, on a new connection,
    # as browsers do, and the retry is reported. Any other method must not
    # be sent twice (RFC 9110 9.2.2): a second signup answers 422
    # user_already_exists, a second password change 422 same_password. So
    # it goes out on a new connection from the start, where that race does
    # not exist, and a connection closed under it fails the test.
    my $safe = $method =~ /^(?:GET|HEAD|OPTIONS)$/;
    $ua->conn_cache->drop if !$safe && $ua->conn_cache;
    my $res = $ua->request($req);
    if ($res->code == 500 && ($res->header('Client-Warning') // '') eq 'Internal response'
        && $res->content =~ /^Server closed connection without sending any data back/) {
        require Test::More;
        # Why the server closed it is in its error log (nginx: a worker that
        # died, an upstream that failed after the answer's head; at notice,
        # a worker told to exit, and by whom: named here while it runs).
        my $log = $self->can('error_log') ? $self->error_log // '' : '';
        my @tail = grep { length } (split /\n/, $log)[-12 .. -1];
        my %sender = map { /signal \d+ \(SIG(?:TERM|INT|QUIT|KILL)\) received from (\d+)/ ? ($1 => 1) : () } @tail;
        for my $pid (sort keys %sender) {
            my $cmd = SV::Test::slurp_file("/proc/$pid/cmdline") // next;
            $cmd =~ tr/\0/ /;
            push @tail, "(pid $pid is $cmd)";
        }
        Test::More::diag("$method $path: the connection was closed before any answer"
            . ($safe ? '; sent again' : '') . (@tail ? "; the server's error log ends:\n" . join "\n", @tail : ''));
        if ($safe) {
            $ua->conn_cache->drop if $ua->conn_cache;
            $res = $ua->request($req);
        }
    }
    return $res;
}

# A request with a JSON body, the way supabase-js sends them: body => a
# reference is encoded (canonical JSON), a string goes as it is; token =>
# adds "Authorization: Bearer <token>"; headers and ua as for request.
# Returns (the response, its body decoded as JSON or undef); in scalar
# context the response.
sub call {
    my ($self, $method, $path, %opt) = @_;
    require JSON::PP;
    my $body = $opt{body};
    $body = JSON::PP->new->canonical->encode($body) if ref $body;
    my %h = (defined $opt{token} ? (Authorization => "Bearer $opt{token}") : (), %{ $opt{headers} // {} });
    my $res = $self->request($method, $path, headers => \%h,
        (defined $body ? (body => $body) : ()), ($opt{ua} ? (ua => $opt{ua}) : ()));
    return wantarray ? ($res, $self->json($res)) : $res;
}

# A response body as JSON; undef (and no exception) when it is not.
sub json {
    my ($self, $res) = @_;
    require JSON::PP;
    my $body = ref $res ? $res->decoded_content // $res->content : $res;
    return eval { JSON::PP->new->allow_nonref->decode($body) };
}

1;
