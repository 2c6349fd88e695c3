package SV::Test::Fake;

# A small HTTP server standing in for an external API (a platform, the AI
# model, IndexNow) in one test: it answers on a loopback port with the
# handlers the test gives, one forked process per connection (so a slow
# answer delays nobody else), and records every request it got.
#
#   my $ai = SV::Test::Fake->new(name => 'ai', routes => {
#       'POST /v1/chat/completions' => sub {
#           my ($req) = @_;            # {method, path, query, headers, body, json, n}
#           return [200, { 'Content-Type' => 'application/json' }, $json_text];
#       },
#   });
#   $ai->url('/v1');                   # http://127.0.0.1:PORT/v1
#   $ai->requests('POST /v1/chat/completions');   # what it received
#   $ai->stop;                         # also at exit, by pid
#
# $req->{n} counts the earlier requests to the same route (0 for the
# first), so a handler can answer 401 once and then 200, or fail twice.
#
# quick => N (benchmarks): N processes, forked once, answer one
# connection after another and record nothing ($req->{n} is 0; requests
# and count die): the fake costs next to nothing per request, so what is
# measured is the server. A handler that sleeps holds up its process.
# A handler may sleep (a slow API) or return [status, headers, body,
# delay_seconds]. Unknown routes get 404.

use strict;
use warnings;

use Carp qw(croak);
use Fcntl qw(:flock);
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Time::HiRes ();
use SV::Test qw(sv_tempdir wait_until stop_process pid_alive slurp_file register_cleanup);

sub new {
    my ($class, %opt) = @_;
    my $dir = sv_tempdir(prefix => 'svfake');
    my $self = bless {
        name   => $opt{name} // 'fake',
        routes => $opt{routes} // {},
        dir    => $dir,
        log    => "$dir/requests.jsonl",
        pid    => undef,
        port   => undef,
        quick  => $opt{quick} // 0,
    }, $class;
    open my $fh, '>', $self->{log} or croak "$self->{log}: $!";
    close $fh;
    $self->start;
    register_cleanup(sub { $self->stop });
    return $self;
}

# The jobs tests' model (enhance-ai's chat completions, started like new):
# a content whose title says "held" is answered only once the file
# release => FILE exists (for at most seconds => N, default 120), any
# other at once; the answer is always the same valid suggestion.
sub held_model {
    my ($class, %opt) = @_;
    my $release = $opt{release} or croak 'held_model: release => FILE';
    my $polls = 10 * ($opt{seconds} // 120);
    my $json = JSON::PP->new->canonical;
    return $class->new(name => $opt{name} // 'ai', routes => {
        'POST /v1/chat/completions' => sub {
            my ($req) = @_;
            if (($req->{json}{messages}[1]{content} // '') =~ /held/) {
                for (1 .. $polls) { last if -e $release; Time::HiRes::sleep(0.1) }
            }
            my $content = $json->encode({ title => 'Better', description => 'Clearer.', tags => ['x'] });
            return [200, { 'Content-Type' => 'application/json' }, $json->encode({
                choices => [{ index => 0, message => { role => 'assistant', content => $content },
                              finish_reason => 'stop' }] })];
        },
    });
}

sub port { $_[0]{port} }

# The base URL, with an optional path: $fake->url('/v1').
sub url {
    my ($self, $path) = @_;
    return "http://127.0.0.1:$self->{port}" . ($path // '');
}

sub start {
    my ($self) = @_;
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
        Listen => 128, ReuseAddr => 1) or croak "fake $self->{name}: listen: $!";
    $self->{port} = $listen->sockport;
    my $pid = fork;
    croak "fork: $!" unless defined $pid;
    if ($pid == 0) {
        $SIG{CHLD} = 'IGNORE';
        $SIG{$_} = 'DEFAULT' for qw(INT TERM);
        POSIX::setpgid(0, 0);
        if ($self->{quick}) {
            for (2 .. $self->{quick}) { last unless fork // 0 }
            while (1) {
                my $conn = $listen->accept or next;
                eval { $self->_serve($conn); 1 } or print STDERR "fake $self->{name}: $@";
                close $conn;
            }
        }
        while (1) {
            my $conn = $listen->accept or next;
            my $kid = fork;
            if (defined $kid && $kid == 0) {
                close $listen;
                eval { $self->_serve($conn); 1 } or print STDERR "fake $self->{name}: $@";
                POSIX::_exit(0);
            }
            close $conn;
        }
    }
    close $listen;
    $self->{pid} = $pid;
    return $self;
}

sub stop {
    my ($self) = @_;
    my $pid = $self->{pid} or return;
    # The server and the connections it is still serving (its group).
    kill 'KILL', -$pid;
    stop_process($pid, signals => ['KILL'], timeout => 5);
    $self->{pid} = undef;
    return;
}

# The requests received so far (oldest first), each {method, path, query,
# headers, body, json (the body decoded, when it is JSON), t (when it
# arrived, epoch seconds)}; with a route ("POST /v1/x"), only those.
sub requests {
    my ($self, $route) = @_;
    croak "fake $self->{name}: a quick fake records nothing" if $self->{quick};
    my @all;
    for my $line (split /\n/, slurp_file($self->{log}) // '') {
        my $r = eval { JSON::PP->new->decode($line) } or next;
        $r->{json} = eval { JSON::PP->new->decode($r->{body}) } if length $r->{body};
        push @all, $r if !defined $route || "$r->{method} $r->{path}" eq $route;
    }
    return @all;
}

sub count { my ($self, $route) = @_; return scalar(my @r = $self->requests($route)) }

sub _read_request {
    my ($conn) = @_;
    local $/ = "\r\n";
    my $line = <$conn> // return;
    $line =~ s/\r\n\z//;
    my ($method, $target) = split / /, $line;
    return unless defined $target;
    my %h;
    while (defined(my $hl = <$conn>)) {
        $hl =~ s/\r\n\z//;
        last if $hl eq '';
        my ($k, $v) = $hl =~ /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
    }
    my $body = '';
    if (my $len = $h{'content-length'}) {
        read($conn, $body, $len);
    }
    my ($path, $query) = split /\?/, $target, 2;
    return { method => $method, path => $path, query => $query // '', headers => \%h, body => $body };
}

sub _serve {
    my ($self, $conn) = @_;
    my $req = _read_request($conn) or return;
    my $route = "$req->{method} $req->{path}";
    $req->{n} = 0;
    unless ($self->{quick}) {
        # Record first, under a lock, and learn how many came before.
        open my $log, '>>', $self->{log} or die "log: $!";
        flock $log, LOCK_EX;
        my $before = grep { my $r = eval { JSON::PP->new->decode($_) }; $r && "$r->{method} $r->{path}" eq $route }
            split /\n/, (slurp_file($self->{log}) // '');
        $req->{t} = Time::HiRes::time();
        print {$log} JSON::PP->new->canonical->encode($req), "\n";
        flock $log, LOCK_UN;
        close $log;
        $req->{n} = $before;
    }
    $req->{json} = eval { JSON::PP->new->decode($req->{body}) } if length $req->{body};
    my %q;
    for my $pair (split /&/, $req->{query}) {
        my ($k, $v) = split /=/, $pair, 2;
        s/\+/ /g, s/%([0-9A-Fa-f]{2})/chr hex $1/ge for $k, $v;
        $q{$k} = $v // '';
    }
    $req->{params} = \%q;
    my $handler = $self->{routes}{$route};
    my ($status, $headers, $body, $delay) = $handler ? @{ $handler->($req) }
        : (404, { 'Content-Type' => 'application/json' }, '{"error":"no such route in the fake"}');
    Time::HiRes::sleep($delay) if $delay;
    return if $status eq 'hang_up';    # close without an answer
    $body //= '';
    my $head = "HTTP/1.1 $status X\r\n";
    my %hh = (%{ $headers // {} }, 'Content-Length' => length $body, Connection => 'close');
    $head .= "$_: $hh{$_}\r\n" for sort keys %hh;
    print {$conn} $head, "\r\n", $body;
    close $conn;
    return;
}

1;
