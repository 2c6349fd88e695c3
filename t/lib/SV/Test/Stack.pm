package SV::Test::Stack;

# One test's servers in one call -- PostgreSQL started and migrated, the
# pool with the test's settings, nginx in front -- and the fixtures and
# tokens the tests make against them:
#
#   use SV::Test::Stack;
#   my $s = SV::Test::Stack->new(workers => 2, conf => { jwt_secret => $secret });
#   my ($pg, $pool, $ngx) = ($s->pg, $s->pool, $s->ngx);
#
#   my $A = $s->user('a@example.com');                 # rows made as the superuser
#   my $h = $s->handle($A, 'alice', platform => 'instagram', visibility => 'public');
#   my $c = $s->content($h, 'v1', title => 'First', tags => ['a']);
#   my ($res, $doc) = $ngx->call('GET', '/rest/v1/handle_content', token => $s->jwt(user => $A));
#   my $r = $s->as_role('authenticated', $A, 'SELECT ...', @bind);   # SQL as the server runs it
#   $s->quota_used($A, 'ai'); $s->job_rows($job_id);    # a month's count; a job's audit_log rows
#   $s->stop;                                          # nginx, then the pool (all of it at exit anyway)
#
# The AI jobs tests open with ai_jobs instead of new (see there):
#
#   my $s = SV::Test::Stack->ai_jobs(ai => $fake_model, titles => [qw(held quick)], conf => { ... });
#   my ($A, $tok, %content) = ($s->jobs_user, $s->jobs_token, $s->jobs_content);
#   my $job = $s->accept_ai_job('quick');              # a test: 202; the job id
#
# new's options: pool => 0 for PostgreSQL alone, nginx => 0 for no nginx;
# workers, conf, env, args as SV::Test::Pool; nginx_conf as SV::Test::Nginx's
# conf (nginx_port: its port, when the test must know it first); pg => an existing cluster, to start another pool on it (not
# migrated again), pg_settings => postgresql.conf settings of a new one. A new cluster's migration is the test "migrate". When
# what it would start is not installed the test is skipped (plan skip_all).

use strict;
use warnings;

use Test::More ();
use SV::Test ();
use SV::Test::Pg;
use SV::Test::Pool;
use SV::Test::Nginx;

sub new {
    my ($class, %opt) = @_;
    my $want_pool = $opt{pool} // 1;
    my $want_nginx = $want_pool && ($opt{nginx} // 1);
    Test::More::plan(skip_all => 'nginx not installed')
        if $want_nginx && !SV::Test::Nginx::available();
    my $self = bless { pg => $opt{pg} }, $class;
    unless ($self->{pg}) {
        Test::More::plan(skip_all => 'PostgreSQL server not installed') unless SV::Test::Pg::available();
        Test::More::plan(skip_all => 'streamvibe-admin not built')
            unless -x SV::Test::sv_builddir() . '/streamvibe-admin';
        $self->{pg} = SV::Test::Pg->new($opt{pg_settings} ? (settings => $opt{pg_settings}) : ());
        $self->{pg}->start;
        my ($rc, $out) = $self->{pg}->migrate;
        local $Test::Builder::Level = $Test::Builder::Level + 1;
        Test::More::is($rc, 0, 'migrate') or Test::More::diag($out);
    }
    if ($want_pool) {
        $self->{pool} = SV::Test::Pool->new(pg => $self->{pg}, workers => $opt{workers},
            map { exists $opt{$_} ? ($_ => $opt{$_}) : () } qw(conf env args));
        $self->{pool}->start;
    }
    if ($want_nginx) {
        $self->{ngx} = SV::Test::Nginx->new(pool => $self->{pool}, conf => $opt{nginx_conf},
            port => $opt{nginx_port});
        $self->{ngx}->start;
    }
    return $self;
}

sub pg   { $_[0]{pg} }
sub pool { $_[0]{pool} }
sub ngx  { $_[0]{ngx} }

# Connections made once: as the superuser (fixtures, checks behind the
# API's back) and as the server's login role.
sub su  { $_[0]{su}  //= $_[0]{pg}->dbh(user => 'postgres') }
sub api { $_[0]{api} //= $_[0]{pg}->dbh(user => 'authenticator') }

# SV::Test::Pg::run_as_role on the authenticator connection.
sub as_role {
    my ($self, $role, $uid, $sql, @bind) = @_;
    return SV::Test::Pg->run_as_role($self->api, $role, $uid, $sql, \@bind);
}

# SV::Test::jwt signed with the pool's jwt_secret unless secret => says
# otherwise.
sub jwt {
    my ($self, %o) = @_;
    return SV::Test::jwt(secret => $self->{pool} && $self->{pool}->conf('jwt_secret'), %o);
}

# The headers supabase-js sends for a signed-in user: the anon key and
# the user's access token, with a session_id as GoTrue issues them
# (session_id => ..., email => ... in %o to choose).
sub auth {
    my ($self, $uid, %o) = @_;
    return { apikey => $self->jwt(role => 'anon'), Authorization => 'Bearer ' . $self->jwt(user => $uid,
        session_id => '00000000-0000-4000-8000-000000000001', %o) };
}

# The headers of a server-side client holding the service_role key.
sub service {
    my ($self) = @_;
    my $key = $self->jwt(role => 'service_role');
    return { apikey => $key, Authorization => "Bearer $key" };
}

sub platform {
    my ($self, $name) = @_;
    return scalar $self->su->selectrow_array('SELECT id FROM platforms WHERE name = ?', undef, $name);
}

# Rows made directly, as the superuser: the triggers run, RLS does not.
# Each returns the new id; %col are further columns (an array reference
# for an array column, undef for NULL).
sub user {
    my ($self, $email, %col) = @_;
    return $self->_insert('auth.users', email => $email, %col);
}

# On youtube unless platform => another platform's name.
sub handle {
    my ($self, $uid, $handle, %col) = @_;
    my $platform = $self->platform(delete $col{platform} // 'youtube');
    return $self->_insert('account_handles', user_id => $uid, platform_id => $platform,
        handle => $handle, %col);
}

sub content {
    my ($self, $hid, $pcid, %col) = @_;
    return $self->_insert('handle_content', handle_id => $hid, platform_content_id => $pcid, %col);
}

# The isolation tests' fixtures, by position: a handle of a visibility
# (active unless $status says otherwise), and content titled
# "title <pcid>" of a visibility, soft-deleted when $deleted is true.
sub fixture_handle {
    my ($self, $uid, $name, $vis, $status) = @_;
    return $self->handle($uid, $name, visibility => $vis, active_status => $status // 'active');
}

sub fixture_content {
    my ($self, $hid, $pcid, $vis, $deleted) = @_;
    return $self->content($hid, $pcid, title => "title $pcid", visibility => $vis,
        deleted_at => $deleted ? '2025-06-01' : undef);
}

# What the jobs tests check behind the API's back: a quota's month count
# for a user ('syncs', 'ai', 'indexing'), and a job's audit_log rows
# ([{job_status, job_error}], one once it ended).
sub quota_used {
    my ($self, $uid, $quota) = @_;
    my %column = (syncs => 'current_syncs_count', ai => 'current_ai_count', indexing => 'current_indexing_count');
    my $col = $column{$quota} or die "quota_used: no quota $quota";
    return scalar $self->su->selectrow_array("SELECT $col FROM subscription_settings WHERE user_id = ?", undef, $uid);
}

sub job_rows {
    my ($self, $job) = @_;
    return $self->su->selectall_arrayref('SELECT job_status, job_error FROM audit_log WHERE job_id = ?',
        { Slice => {} }, $job);
}

# The AI jobs tests' opening: new with two workers and a pool that runs
# jobs with the built streamvibe-job against the fake model ai => (an
# SV::Test::Fake), up to 20 at once per user; conf adds to that or
# overrides it, the other options are new's. Then user a@example.com,
# allowed 100 AI jobs a month (ai_quota => another number, or undef for
# her tier's), her handle 'alice' holding a content item titled after
# each of titles => [...] (platform id: pcid->($title), else the title),
# and her token: jobs_user, jobs_token, and jobs_content (title => id, or
# the id of one title).
sub ai_jobs {
    my ($class, %opt) = @_;
    my $ai = delete $opt{ai} or die "ai_jobs: ai => the fake model\n";
    my $titles = delete $opt{titles} // [];
    my $pcid = delete $opt{pcid} // sub { $_[0] };
    my $quota = exists $opt{ai_quota} ? delete $opt{ai_quota} : 100;
    my $self = $class->new(workers => 2, %opt, conf => {
        job_program => SV::Test::sv_builddir() . '/streamvibe-job', ai_base_url => $ai->url('/v1'),
        job_max_running_per_user => 20, %{ $opt{conf} // {} } });
    my $A = $self->user('a@example.com');
    $self->su->do(q{UPDATE subscription_settings SET max_ai_per_month = ? WHERE user_id = ?}, undef, $quota, $A)
        if defined $quota;
    my $h = $self->handle($A, 'alice');
    $self->{jobs} = { user => $A, token => $self->jwt(user => $A),
        content => { map { $_ => $self->content($h, $pcid->($_), title => $_) } @$titles } };
    return $self;
}

sub jobs_user  { $_[0]{jobs}{user} }
sub jobs_token { $_[0]{jobs}{token} }
sub jobs_content {
    my ($self, $title) = @_;
    return @_ > 1 ? $self->{jobs}{content}{$title} : %{ $self->{jobs}{content} };
}

# POST /functions/v1/enhance-ai for the content titled $title, as
# jobs_user, with $query (e.g. '?wait=60') if any: ($res, $doc).
sub enhance_ai {
    my ($self, $title, $query) = @_;
    return $self->ngx->call('POST', '/functions/v1/enhance-ai' . ($query // ''), token => $self->jobs_token,
        body => { contentId => $self->jobs_content($title) });
}

# enhance_ai, which must be accepted (a test: 202): the job's id.
sub accept_ai_job {
    my ($self, $title) = @_;
    my ($res, $doc) = $self->enhance_ai($title);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::is($res->code, 202, "$title: accepted") or Test::More::diag($res->as_string);
    return $doc->{job_id};
}

# How many suggestions the AI job $job stored (one at most, sql/044).
sub job_suggestions {
    my ($self, $job) = @_;
    return scalar $self->su->selectrow_array('SELECT count(*) FROM ai_content_suggestions WHERE job_id = ?',
        undef, $job);
}

sub _insert {
    my ($self, $table, %col) = @_;
    my @k = sort keys %col;
    my $sql = "INSERT INTO $table (" . join(', ', @k) . ') VALUES ('
        . join(', ', ('?') x @k) . ') RETURNING id';
    return scalar $self->su->selectrow_array($sql, undef, @col{@k});
}

sub stop {
    my ($self) = @_;
    $self->{ngx}->stop if $self->{ngx};
    $self->{pool}->stop if $self->{pool};
    return $self;
}

1;
