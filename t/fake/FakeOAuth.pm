package FakeOAuth;

# Starts t/fake/oauth-provider.pl for one test and reads what it did:
#
#   my $fake = FakeOAuth->new(client_id => 'cid', client_secret => 'csecret');
#   $fake->url('/token');          # http://127.0.0.1:PORT/token
#   $fake->conf(qw(youtube tiktok)); # the oauth_<platform>_* keys pointing here
#   $fake->mode(refresh => 'invalid_grant', delay => 2);
#   $fake->calls('refresh_token'); # outcomes of the token endpoint calls
#   $fake->tokens;                 # every token it ever issued
#   $fake->exchange_redirect_uris; # the redirect_uri of each code exchange
#   $fake->stop;                   # also at exit
use strict;
use warnings;
use JSON::PP;
our @ports;
use SV::Test qw(sv_srcdir sv_tempdir wait_until spawn_process stop_process slurp_file write_file register_cleanup);

sub new {
    my ($class, %opt) = @_;
    my $dir = sv_tempdir(prefix => 'svfake');
    my $self = bless { dir => $dir, client_id => $opt{client_id} // 'test-client',
        client_secret => $opt{client_secret} // 'test-client-secret' }, $class;
    $self->mode(%{ $opt{mode} // {} });
    $self->{pid} = spawn_process([$^X, sv_srcdir() . '/t/fake/oauth-provider.pl', $dir,
        $self->{client_id}, $self->{client_secret}], stdout => "$dir/stderr.log", stderr => "$dir/stderr.log");
    wait_until(sub { -s "$dir/port" }, 10) or die "fake OAuth provider did not start: " . (slurp_file("$dir/stderr.log") // '');
    $self->{port} = slurp_file("$dir/port");
    push @ports, $self->{port};
    register_cleanup(sub { $self->stop });
    return $self;
}

sub dir  { $_[0]{dir} }
sub port { $_[0]{port} }
sub url  { "http://127.0.0.1:$_[0]{port}$_[1]" }
sub client_id { $_[0]{client_id} }
sub client_secret { $_[0]{client_secret} }

# The server's configuration keys that send each of @platforms to this
# provider (oauth_<platform>_client_id, _client_secret, _authorize_url,
# _token_url, _revoke_url), as a list of pairs. Instagram has no revoke
# endpoint: its revoke URL is empty.
sub conf {
    my ($self, @platforms) = @_;
    return map {
        ("oauth_${_}_client_id" => $self->{client_id}, "oauth_${_}_client_secret" => $self->{client_secret},
         "oauth_${_}_authorize_url" => $self->url('/authorize'), "oauth_${_}_token_url" => $self->url('/token'),
         "oauth_${_}_revoke_url" => $_ eq 'instagram' ? '' : $self->url('/revoke'))
    } @platforms;
}

sub mode {
    my ($self, %m) = @_;
    write_file("$self->{dir}/mode.json.tmp", encode_json(\%m));
    rename "$self->{dir}/mode.json.tmp", "$self->{dir}/mode.json";
    return $self;
}
sub lines { my ($self, $f) = @_; grep { length } split /\n/, (slurp_file("$self->{dir}/$f") // '') }
# Outcomes of token endpoint calls, optionally for one grant type.
sub calls {
    my ($self, $grant) = @_;
    return map { (split ' ')[1] } grep { !defined $grant || /^\Q$grant\E / } $self->lines('calls.log');
}
sub tokens   { $_[0]->lines('tokens.log') }
sub revoked  { $_[0]->lines('revoked.log') }
sub requests { $_[0]->lines('requests.log') }
sub authorize_requests { map { decode_json($_) } $_[0]->lines('authorize.log') }
# The redirect_uri sent with each code exchange at the token endpoint.
sub exchange_redirect_uris { map { decode_json($_)->{redirect_uri} } $_[0]->lines('exchanges.log') }
# A browser following redirects from $start_path (requested through
# nginx with %$headers, the app's Authorization and apikey); the provider
# and the callback are requested without them, as a browser would. Stops
# at the first URL outside nginx and the fake (the app), or after 10 hops.
# Returns (final location or undef, [ [code, url], ... ]).
sub browse {
    my ($ngx, $start_path, $headers) = @_;
    require LWP::UserAgent;
    require HTTP::Request;
    my $ua = LWP::UserAgent->new(max_redirect => 0, timeout => 30, env_proxy => 0);
    $ua->no_proxy;
    my $url = $ngx->url($start_path);
    my @hops;
    for my $i (0 .. 9) {
        my $req = HTTP::Request->new(GET => $url);
        if ($i == 0) { $req->header($_ => $headers->{$_}) for keys %{ $headers // {} } }
        my $res = $ua->request($req);
        push @hops, [$res->code, $url, $res];
        return (undef, \@hops) unless $res->code =~ /^30[1237]$/;
        my $loc = $res->header('Location') // return (undef, \@hops);
        return ($loc, \@hops) unless $loc =~ m{^http://127\.0\.0\.1:(\d+)/} && ($1 == $ngx->port || grep { $_ == $1 } _ports());
        $url = $loc;
    }
    return (undef, \@hops);
}
sub _ports { @FakeOAuth::ports }

sub stop {
    my ($self) = @_;
    stop_process($self->{pid}, children => 1) if $self->{pid};
    $self->{pid} = undef;
}

1;
