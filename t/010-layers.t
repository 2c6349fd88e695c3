#!/usr/bin/perl
# src/ is one directory a layer, and the order of the layers is written
# once, in doc/architecture.md (the line starting "layers:"). A file may
# include headers of its own layer and of the layers below it, never of
# one above: a handler does not know the worker, the database layer does
# not know a handler. This test reads every #include and fails on one
# that runs upward or names a directory the order does not know.

use strict;
use warnings;
use Test::More;
use SV::Test qw(sv_srcdir slurp_file);

my $src = sv_srcdir();
my $doc = slurp_file("$src/doc/architecture.md") // '';
my ($line) = $doc =~ /^layers:\s*(.+)$/m;
ok(defined $line, 'doc/architecture.md states the layer order') or BAIL_OUT('no "layers:" line');
my @order = split /\s*<\s*/, $line;
my %rank = map { $order[$_] => $_ } 0 .. $#order;
cmp_ok(scalar @order, '>=', 8, 'the order names the layers');

opendir my $dh, "$src/src" or BAIL_OUT("cannot read $src/src: $!");
my @dirs = sort grep { !/^\./ && -d "$src/src/$_" } readdir $dh;
closedir $dh;
for my $d (@dirs) {
    ok(exists $rank{$d}, "src/$d/ has a place in the layer order");
}

my ($files, $includes, @upward) = (0, 0);
for my $d (@dirs) {
    next unless exists $rank{$d};
    for my $f (sort glob("$src/src/$d/*.[ch]")) {
        $files++;
        my $text = slurp_file($f) // '';
        (my $rel = $f) =~ s{^\Q$src\E/}{};
        while ($text =~ /^\s*#\s*include\s+"([^"]+)"/mg) {
            my $inc = $1;
            next if $inc eq 'config.h';
            $includes++;
            my ($layer) = $inc =~ m{^([a-z]+)/[^/]+\.h$};
            if (!defined $layer || !exists $rank{$layer}) {
                push @upward, "$rel includes \"$inc\", which is not in a known layer";
            } elsif ($rank{$layer} > $rank{$d}) {
                push @upward, "$rel ($d) includes $inc ($layer is above $d)";
            }
        }
    }
}
cmp_ok($files, '>', 20, "read $files source files");
cmp_ok($includes, '>', 50, "checked $includes project includes");
is(scalar @upward, 0, 'no include runs upward') or diag join "\n", @upward;

# The check itself must be able to fail: an upward include is caught.
my $probe = 'db/sv_db.c includes worker/sv_worker.h';
ok($rank{worker} > $rank{db}, "the order would catch $probe");

done_testing;
