package SV::Test::Sync;

# The sync tests' setting, in one call: the fake OAuth provider
# (t/fake/FakeOAuth.pm), a fake of each platform's API
# (t/fake/FakePlatform.pm), a vault key file (a test: root's alone), and
# an SV::Test::Stack whose pool sends sync-platform jobs to them:
#
#   use SV::Test::Sync;
#   my $x = SV::Test::Sync->new(workers => 2, conf => { sync_max_pages => 3 });
#   my ($s, $oauth) = ($x->stack, $x->oauth);     # SV::Test::Stack, FakeOAuth
#   $x->fake('youtube')->items(@items);           # FakePlatform
#   $x->connect($uid, 'youtube');                  # the account connected through
#                                                  # the OAuth flow, as a browser would (a test)
#   $x->key_file; $x->user;                        # the vault key; the workers' user (undef: not root)
#
# conf's keys are added to (or replace) the sync settings. Run as root,
# the pool's workers, and so the jobs, run as an unprivileged user who
# cannot read the key file: a sync gets the keys from its worker.

use strict;
use warnings;

use Cwd ();
BEGIN {
    my $t = Cwd::abs_path(__FILE__) =~ s{/lib/SV/Test/Sync\.pm$}{}r;
    unshift @INC, "$t/fake";
}
use Test::More ();
use FakeOAuth;
use FakePlatform;
use SV::Test qw(sv_builddir sv_tempdir run_command free_tcp_port unprivileged_user);
use SV::Test::Stack;

my @PLATFORMS = qw(youtube instagram tiktok);

sub new {
    my ($class, %opt) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $oauth = FakeOAuth->new(client_id => 'sync-client', client_secret => 'sync-client-secret');
    my %fake = map { $_ => FakePlatform->new($_, oauth => $oauth) } @PLATFORMS;

    my $keys = sv_tempdir(prefix => 'svkeys');
    my ($krc) = run_command([sv_builddir() . '/streamvibe-admin', 'keygen', "$keys/vault.key"]);
    Test::More::is($krc, 0, 'a vault key file');
    Test::More::is((stat "$keys/vault.key")[2] & 0777, 0600, 'readable by its owner only');

    my $port = $opt{nginx_port} // free_tcp_port();
    my %conf = (jwt_secret => 'jobs-sync-secret-' . ('s' x 32),
        job_spool_dir => sv_tempdir(prefix => 'svspool') . '/jobs',
        job_program => sv_builddir() . '/streamvibe-job', vault_key_file => "$keys/vault.key",
        api_external_url => "http://127.0.0.1:$port", site_url => 'https://app.example.com',
        rate_limit_functions => 'off', oauth_http_timeout => 5, http_timeout => 3,
        map { ("${_}_api_url" => $fake{$_}->url) } @PLATFORMS);
    for my $p (@PLATFORMS) {
        $conf{"oauth_${p}_client_id"} = $oauth->client_id;
        $conf{"oauth_${p}_client_secret"} = $oauth->client_secret;
        $conf{"oauth_${p}_authorize_url"} = $oauth->url('/authorize');
        $conf{"oauth_${p}_token_url"} = $oauth->url('/token');
        $conf{"oauth_${p}_revoke_url"} = $oauth->url('/revoke');
    }
    my $user = $> == 0 ? unprivileged_user() : undef;
    $conf{user} = $user if $user;
    %conf = (%conf, %{ $opt{conf} // {} });
    my $s = SV::Test::Stack->new(workers => $opt{workers} // 2, conf => \%conf, nginx_port => $port);
    return bless { stack => $s, oauth => $oauth, fake => \%fake, key_file => "$keys/vault.key",
        user => $user }, $class;
}

sub stack    { $_[0]{stack} }
sub oauth    { $_[0]{oauth} }
sub fake     { $_[0]{fake}{ $_[1] } // die "no fake for $_[1]" }
sub key_file { $_[0]{key_file} }
sub user     { $_[0]{user} }

# Connects $uid's $platform account through the OAuth flow started from
# the app (with a session: its id binds the flow to it); a test, named
# $name if given.
sub connect {
    my ($self, $uid, $platform, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $s = $self->{stack};
    my %browser = (apikey => $s->jwt(role => 'anon'), Authorization => 'Bearer ' . $s->jwt(claims => {
        sub => $uid, role => 'authenticated', aud => 'authenticated',
        session_id => '00000000-0000-4000-8000-000000000001', iat => time, exp => time + 3600 }));
    my ($final) = FakeOAuth::browse($s->ngx, "/functions/v1/oauth/$platform/start", \%browser);
    return Test::More::is($final, "https://app.example.com?connected=$platform",
        $name // "connected $platform through the OAuth flow");
}

1;
