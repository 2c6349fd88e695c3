#!/usr/bin/perl
# The man pages agree with the programs: every option and command that
# --help lists is documented in the page's OPTIONS or COMMANDS, and the
# page documents none that --help does not list; streamvibe.conf(5)
# documents exactly the keys of the configuration table
# (src/core/sv_config.c), which are exactly those of
# streamvibe.conf.sample. The pages render without groff warnings.

use strict;
use warnings;
use Test::More;
use SV::Test qw(:DEFAULT run_command slurp_file find_program);

my $src = sv_srcdir();
my $build = sv_builddir();

# The text of a roff page with font escapes and \- turned to plain text.
sub plain {
    my ($s) = @_;
    $s =~ s/\\f[BIRP]//g;
    $s =~ s/\\-/-/g;
    $s =~ s/\\\(aq/'/g;
    return $s;
}
# Sections of a page: name => text.
sub sections {
    my ($page) = @_;
    my %sec;
    my $cur = '';
    for my $line (split /\n/, slurp_file($page) // die "cannot read $page") {
        if ($line =~ /^\.SH\s+"?([^"]+?)"?\s*$/) { $cur = $1; next }
        $sec{$cur} .= plain($line) . "\n";
    }
    return \%sec;
}
# The long options named in a text.
sub options { my %o = map { $_ => 1 } $_[0] =~ /(?<![\w-])(--[a-z][a-z-]*)/g; return [sort keys %o] }

# --- streamvibe-fcgi(8) ------------------------------------------------------
{
    my ($rc, $help) = run_command(["$build/streamvibe-fcgi", '--help']);
    is($rc, 0, 'streamvibe-fcgi --help');
    my $sec = sections("$src/man/streamvibe-fcgi.8");
    ok($sec->{OPTIONS}, 'streamvibe-fcgi(8) has OPTIONS');
    my $from_help = options($help);
    cmp_ok(scalar @$from_help, '>=', 5, "--help lists @$from_help");
    is_deeply(options($sec->{OPTIONS} // ''), $from_help, 'streamvibe-fcgi(8) OPTIONS = --help\'s options');
    # And every option the page lists is accepted.
    for my $o (@$from_help) {
        my @args = $o eq '--config' ? ($o, '/dev/null', '--check-config')
            : $o eq '--pool' ? ($o, '--help') : ($o);
        my ($orc, $oout) = run_command(["$build/streamvibe-fcgi", @args], merge => 1,
            env => { map { $_ => undef } grep { /^STREAMVIBE_/ } keys %ENV });
        is($orc, 0, "streamvibe-fcgi @args is accepted") or diag $oout;
    }
    my ($brc) = run_command(["$build/streamvibe-fcgi", '--no-such-option']);
    is($brc, 2, 'an unknown option: exit 2, as EXIT STATUS says');
    like($sec->{'EXIT STATUS'} // '', qr/2 for an unknown option/, 'documented');
    like($sec->{SIGNALS} // '', qr/SIGUSR1/, 'SIGNALS documents SIGUSR1');
}

# --- streamvibe-job(8), streamvibe-realtime(8) --------------------------------
# The same comparison: OPTIONS = --help's options, each of them accepted
# (--config with a file that loads, with an action that ends at once), an
# unknown option is exit 2 as EXIT STATUS says.
for my $prog (qw(streamvibe-job streamvibe-realtime)) {
    my ($rc, $help) = run_command(["$build/$prog", '--help']);
    is($rc, 0, "$prog --help");
    my $sec = sections("$src/man/$prog.8");
    ok($sec->{OPTIONS}, "$prog(8) has OPTIONS");
    my $from_help = options($help);
    cmp_ok(scalar @$from_help, '>=', 4, "--help lists @$from_help");
    is_deeply(options($sec->{OPTIONS} // ''), $from_help, "$prog(8) OPTIONS = --help's options");
    # An option the help lists is one getopt knows: with --help after it,
    # it is parsed and the program prints its usage and exits 0; an
    # unknown option is refused before --help is reached.
    for my $o (@$from_help) {
        my @args = $o =~ /^--(?:config|config-fd|lock-fd|vault-fd)$/ ? ($o, $o eq '--config' ? '/dev/null' : '3', '--help')
            : $o eq '--help' ? ($o) : ($o, '--help');
        my ($orc, $oout) = run_command(["$build/$prog", @args], merge => 1,
            env => { map { $_ => undef } grep { /^STREAMVIBE_/ } keys %ENV });
        is($orc, 0, "$prog @args is accepted") or diag $oout;
    }
    my ($brc) = run_command(["$build/$prog", '--no-such-option', '--help']);
    is($brc, 2, "$prog: an unknown option: exit 2");
    like($sec->{'EXIT STATUS'} // '', qr/2 for an unknown option/, 'as EXIT STATUS says');
}

# --- streamvibe-admin(8) -------------------------------------------------------
{
    my ($rc, $help) = run_command(["$build/streamvibe-admin", 'help']);
    is($rc, 0, 'streamvibe-admin help');
    my $sec = sections("$src/man/streamvibe-admin.8");
    ok($sec->{COMMANDS}, 'streamvibe-admin(8) has COMMANDS');
    # Commands: the words indented by two spaces under "commands:" in
    # the help; the .TP tags of COMMANDS that are not options.
    my ($block) = $help =~ /^commands:\n(.*?)(?:\n\S|\z)/ms;
    my %hc = map { $_ => 1 } ($block // '') =~ /^  ([a-z][a-z-]*(?: [a-z][a-z-]*)?)(?= |$)/mg;
    my %mc;
    my @lines = split /\n/, slurp_file("$src/man/streamvibe-admin.8");
    my $in = 0;
    for my $i (0 .. $#lines) {
        $in = $lines[$i] =~ /^\.SH COMMANDS/ ? 1 : $lines[$i] =~ /^\.SH/ ? 0 : $in;
        next unless $in && $lines[$i] eq '.TP' && defined $lines[$i + 1];
        my $tag = plain($lines[$i + 1]);
        $tag =~ s/^\.B\s+//;
        $mc{$tag} = 1 if $tag =~ /^[a-z]/;
    }
    cmp_ok(scalar keys %hc, '>=', 3, 'help lists commands: ' . join(', ', sort keys %hc));
    is_deeply([sort keys %mc], [sort keys %hc], 'streamvibe-admin(8) COMMANDS = help\'s commands');
    is_deeply(options($sec->{COMMANDS} // ''), options($help), 'and the same options');
    like($help, qr/^usage: /m, 'help starts with usage');
}

# --- streamvibe.conf(5) ----------------------------------------------------------
{
    my $c = slurp_file("$src/src/core/sv_config.c") // die 'sv_config.c';
    my @table = $c =~ /^\s*SV_KEY\((\w+),/mg;
    cmp_ok(scalar @table, '>=', 20, scalar(@table) . ' keys in sv_config.c');
    my %keys = map { $_ => 1 } @table;

    # In the sample, a key is documented set or commented out: "key =" or
    # "#key =" at the start of a line.
    my %sample = map { $_ => 1 } (slurp_file("$src/streamvibe.conf.sample") // '') =~ /^#?([a-z_]+)\s*=/mg;
    is_deeply([sort keys %sample], [sort keys %keys], 'streamvibe.conf.sample has exactly the table\'s keys');

    # In the page, each key is a .TP tag (".B key") in a section after
    # DESCRIPTION and before FILES.
    my @lines = split /\n/, slurp_file("$src/man/streamvibe.conf.5");
    my (%man, $sect);
    for my $i (0 .. $#lines) {
        $sect = $1 if $lines[$i] =~ /^\.SH\s+(.*)/;
        next if !defined $sect || $sect =~ /^(NAME|SYNOPSIS|DESCRIPTION|FILES|EXAMPLE|SEE ALSO)$/;
        $man{$1}++ if $lines[$i] =~ /^\.(?:TP|TQ)$/ && ($lines[$i + 1] // '') =~ /^\.B ([a-z_]+)$/;
    }
    is_deeply([sort keys %man], [sort keys %keys], 'streamvibe.conf(5) documents exactly the table\'s keys');
    is(scalar(grep { $man{$_} > 1 } keys %man), 0, 'each once');

    # The defaults the page states are the table's.
    my %default = $c =~ /^\s*SV_KEY\((\w+),\s*\w+,\s*[^,]+,\s*[^,]+,\s*"([^"]*)"\)/mg;
    my $page = slurp_file("$src/man/streamvibe.conf.5");
    for my $k (sort keys %default) {
        my $d = $default{$k};
        my ($stated) = $page =~ /^\.B \Q$k\E\n\((?:[^)]*?, )?default:? ([^)]*)\)/m;
        if (!defined $stated) { fail("$k: the page states a default"); next }
        $stated = plain($stated);
        $stated =~ s/^\\fI|\\fR$//g;
        if ($d eq '' ) {
            like($stated, qr/^(none|empty|the user's primary group)$/, "$k: no default, and the page says so ($stated)");
        } else {
            is($stated, $d, "$k: default $d");
        }
    }
}

# --- rendering --------------------------------------------------------------------
SKIP: {
    my $groff = find_program('groff') or skip 'groff not installed', 5;
    for my $page (qw(streamvibe-fcgi.8 streamvibe-admin.8 streamvibe-job.8 streamvibe-realtime.8
                     streamvibe.conf.5)) {
        my ($rc, $out, $err) = run_command([$groff, '-man', '-ww', '-z', '-Tutf8', "$src/man/$page"],
            env => { LC_ALL => 'C.UTF-8' });
        ok($rc == 0 && $err eq '', "$page renders without warnings") or diag $err;
    }
}

done_testing;
