package SV::Test::HTTPClient;

# Requests to a front server started by a test (SV::Test::Nginx,
# SV::Test::Apache): both inherit these, and give url($path).
#
#   my $res = $ngx->request('GET', '/rest/v1/t', headers => {...});
#   my ($res, $doc) = $ngx->call('POST', '/auth/v1/signup', body => {...}, token => $jwt);

use strict;
use warnings;

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
    my $res = $ua->request($req);
    # A kept-alive connection the server closed just as the request went
    # out: nothing was answered, so it is sent again on a new connection,
    # once, as browsers do. A server that really drops the request fails
    # the second time too; the retry is reported either way.
    if ($res->code == 500 && ($res->header('Client-Warning') // '') eq 'Internal response'
        && $res->content =~ /^Server closed connection without sending any data back/) {
        require Test::More;
        Test::More::diag("$method $path: the kept connection was closed before any answer; sent again");
        $ua->conn_cache->drop if $ua->conn_cache;
        $res = $ua->request($req);
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
