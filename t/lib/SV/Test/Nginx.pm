package SV::Test::Nginx;

# A real nginx in front of the pool, on a free loopback port:
#
#   my $ngx = SV::Test::Nginx->new(pool => $pool);
#   $ngx->start;
#   my $res = $ngx->request('GET', '/healthz', headers => { 'X-Request-Id' => 'abc' });
#   my $doc = $ngx->json($res);
#   my ($res, $doc) = $ngx->call('POST', '/auth/v1/signup', body => { email => ... },
#                                token => $jwt);    # JSON in, JSON out
#   $ngx->stop;              # also at exit
#
# The config is nginx/streamvibe.conf.in (the one scripts/run uses)
# rendered into the temp dir. conf => { ... } options:
#   body_limit        client_max_body_size (default: the pool's body_limit or 1m)
#   worker_processes  default 1
#   socket            FastCGI socket (default: $pool->socket)
#   read_timeout      fastcgi_read_timeout (default 75s)
#   http_extra, server_extra, fastcgi_extra   raw text for the template's hooks
#   realtime          streamvibe-realtime's address (host:port or unix:/path)
#   error_log_level   default notice (SV_NGINX_ERROR_LOG=info or debug: more), so
#                     that a worker that exits (a signal: its sender's pid) is
#                     in error_log, which the HTTP client shows when a
#                     connection closes without an answer

use strict;
use warnings;

use Carp qw(croak);
use parent 'SV::Test::HTTPClient';
use IO::Socket::INET;
use SV::Test qw(sv_srcdir sv_tempdir wait_until free_tcp_port spawn_process
    stop_process pid_alive slurp_file write_file register_cleanup find_program);

sub nginx_binary {
    return $ENV{NGINX} if $ENV{NGINX} && -x $ENV{NGINX};
    return find_program('nginx', '/usr/sbin');
}

sub available { nginx_binary() ? 1 : 0 }

sub new {
    my ($class, %opt) = @_;
    my $conf = { %{ $opt{conf} // {} } };
    my $pool = $opt{pool};
    my $dir = sv_tempdir(prefix => 'svngx');
    my $body_limit = $conf->{body_limit}
        // ($pool && $pool->conf('body_limit')) // '1m';
    my $self = bless {
        pool    => $pool,
        dir     => $dir,
        port    => $opt{port} // free_tcp_port(),
        socket  => $conf->{socket} // ($pool ? $pool->socket : croak "pool or conf socket needed"),
        conf    => $conf,
        body_limit => $body_limit,
        pid     => undef,
        ua      => undef,
    }, $class;
    mkdir "$dir/tmp";
    $self->render;
    register_cleanup(sub { $self->stop if $self->{pid} });
    return $self;
}

sub ncpu {
    open my $fh, '<', '/proc/cpuinfo' or return 1;
    my $n = grep { /^processor\s*:/ } <$fh>;
    return $n || 1;
}

# Render nginx/streamvibe.conf.in into DIR/nginx.conf.
sub render {
    my ($self) = @_;
    my $tpl_path = sv_srcdir() . '/nginx/streamvibe.conf.in';
    my $tpl = slurp_file($tpl_path) // croak "cannot read $tpl_path";
    my $c = $self->{conf};
    my %v = (
        PREFIX           => $self->{dir},
        LISTEN           => "127.0.0.1:$self->{port}",
        SOCKET           => $self->{socket},
        BODY_LIMIT       => $self->{body_limit},
        USER_DIRECTIVE   => ($> == 0 ? 'user nobody nogroup;' : ''),
        WORKER_PROCESSES => $c->{worker_processes} // 1,
        HTTP_EXTRA       => $c->{http_extra} // '',
        SERVER_EXTRA     => $c->{server_extra} // '',
        FASTCGI_EXTRA    => $c->{fastcgi_extra} // '',
        READ_TIMEOUT     => $c->{read_timeout} // '75s',
        REALTIME         => $c->{realtime} // "unix:$self->{dir}/no-realtime.sock",
        ERROR_LOG_LEVEL  => $c->{error_log_level} // $ENV{SV_NGINX_ERROR_LOG} // 'notice',
    );
    $v{USER_DIRECTIVE} = 'user nobody nobody;'
        if $> == 0 && !defined getgrnam('nogroup');
    $tpl =~ s/\@([A-Z_]+)\@/exists $v{$1} ? $v{$1} : croak "unknown placeholder \@$1\@"/ge;
    write_file("$self->{dir}/nginx.conf", $tpl, 0644);
    return "$self->{dir}/nginx.conf";
}

sub dir        { $_[0]{dir} }
sub port       { $_[0]{port} }
sub pid        { $_[0]{pid} }
sub conf_file  { "$_[0]{dir}/nginx.conf" }
sub error_log  { slurp_file("$_[0]{dir}/error.log") // '' }
sub access_log { slurp_file("$_[0]{dir}/access.log") // '' }

sub start {
    my ($self) = @_;
    croak "nginx already running" if $self->{pid} && pid_alive($self->{pid});
    my $bin = nginx_binary() or croak 'nginx not found';
    my @cmd = ($bin, '-p', "$self->{dir}/", '-c', "$self->{dir}/nginx.conf",
        '-e', "$self->{dir}/error.log", '-g', 'daemon off;');
    # Check the config first so a template error reads as one.
    my ($rc, $out, $err) = SV::Test::run_command([@cmd, '-t'], merge => 1);
    croak "nginx -t failed:\n$out$err" if $rc != 0;
    unlink "$self->{dir}/nginx.pid";
    my $pid = spawn_process(\@cmd, stdout => "$self->{dir}/stderr.log",
        stderr => "$self->{dir}/stderr.log");
    $self->{pid} = $pid;
    my $ok = wait_until(sub {
        return -1 unless pid_alive($pid);
        return 0 unless -s "$self->{dir}/nginx.pid";
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
            Proto => 'tcp', Timeout => 1) or return 0;
        close $s;
        return 1;
    }, 15);
    if (!$ok || $ok == -1) {
        my $log = $self->error_log . (slurp_file("$self->{dir}/stderr.log") // '');
        stop_process($pid, signals => ['TERM', 'KILL'], timeout => 5);
        $self->{pid} = undef;
        croak "nginx did not start:\n$log";
    }
    return $self;
}

# Graceful (QUIT), then TERM, then KILL; by pid.
sub stop {
    my ($self) = @_;
    my $pid = $self->{pid} or return $self;
    my @workers = SV::Test::proc_children($pid);
    stop_process($pid, signals => ['QUIT', 'TERM', 'KILL'], timeout => 10);
    for my $w (@workers) {
        stop_process($w, signals => ['KILL'], timeout => 2)
            if pid_alive($w) && (slurp_file("/proc/$w/cmdline") // '') =~ /nginx/;
    }
    $self->{pid} = undef;
    return $self;
}

sub reload {
    my ($self) = @_;
    kill 'HUP', $self->{pid} if $self->{pid};
    return $self;
}

sub url {
    my ($self, $path) = @_;
    $path //= '/';
    return "http://127.0.0.1:$self->{port}$path";
}

1;
