using System.Diagnostics;
using System.Text;

namespace Attention.Reference.Tests.Support;

/// <summary>
/// The mutation-fuzzing harness of every reader: each seed must parse; each mutant must parse or be refused with exactly
/// the documented exception, its message starting with the source, within <see cref="PerInputLimit"/> and
/// <see cref="AllocationLimit"/>; the whole run within <see cref="WholeRunLimit"/> (a hang is caught too).
/// </summary>
internal static class Fuzzer
{
    /// <summary>No single input may take longer: every reader is linear in its input, and the inputs are small.</summary>
    public static readonly TimeSpan PerInputLimit = TimeSpan.FromSeconds(1);

    /// <summary>A hang never returns to the per-input check, so the run is on its own thread, waited for this long.</summary>
    public static readonly TimeSpan WholeRunLimit = TimeSpan.FromSeconds(60);

    /// <summary>Allowed allocation per input: 1 MB of slack (stack traces, first-use helpers) and 64 bytes a byte.</summary>
    public static long AllocationLimit(byte[] input) => (1 << 20) + 64L * input.Length;

    /// <summary>
    /// Runs <paramref name="parse"/> on the seeds (which must parse) and on the mutants; fails on the first input that
    /// throws anything but <typeparamref name="TException"/> with a message starting with <paramref name="source"/>,
    /// runs over <see cref="PerInputLimit"/>, or allocates over <see cref="AllocationLimit"/>. The mutants are
    /// deterministic, so a failure reproduces from the test and the mutant's index.
    /// </summary>
    public static void Run<TException>(ITestOutputHelper output, string source, IReadOnlyList<byte[]> seeds, IEnumerable<byte[]> mutants,
        Action<byte[]> parse, Func<byte[], long>? allocationLimit = null)
        where TException : Exception
    {
        foreach (var s in seeds) parse(s);
        int parsed = 0, refused = 0, index = -1;
        byte[] current = [];
        TimeSpan slowest = TimeSpan.Zero;
        long mostAllocated = 0;
        var reasons = new Dictionary<string, int>(StringComparer.Ordinal);
        string? failure = null;
        var total = Stopwatch.StartNew();
        var worker = new Thread(() =>
        {
            foreach (var input in mutants)
            {
                index++;
                Volatile.Write(ref current, input);
                long before = GC.GetAllocatedBytesForCurrentThread();
                var clock = Stopwatch.StartNew();
                Exception? error = null;
                try { parse(input); }
                catch (Exception e) { error = e; }
                clock.Stop();
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                string where = $"{source}, mutant {index} ({input.Length} bytes: {Show(input)})";
                if (error is null) parsed++;
                else if (error.GetType() == typeof(TException)
                    && error.Message.StartsWith(source + ":", StringComparison.Ordinal))
                {
                    refused++;
                    string reason = Reason(error.Message[(source.Length + 1)..]);
                    reasons[reason] = reasons.GetValueOrDefault(reason) + 1;
                }
                else
                    failure = $"{where} threw {error.GetType().Name}, expected {typeof(TException).Name} naming {source}: "
                        + error;
                if (clock.Elapsed > PerInputLimit) failure ??= $"{where} took {clock.Elapsed.TotalSeconds:F2} s";
                if (allocated > (allocationLimit ?? AllocationLimit)(input)) failure ??= $"{where} allocated {allocated} bytes";
                if (failure is not null) return;
                if (clock.Elapsed > slowest) slowest = clock.Elapsed;
                mostAllocated = Math.Max(mostAllocated, allocated);
            }
        }) { IsBackground = true, Name = $"fuzz {source}" };
        worker.Start();
        if (!worker.Join(WholeRunLimit))
            Assert.Fail($"{source}: mutant {index} has not finished after {WholeRunLimit.TotalSeconds} s "
                + $"({Show(Volatile.Read(ref current))})");
        total.Stop();
        if (failure is not null) Assert.Fail(failure);
        output.WriteLine($"{source}: {index + 1} mutants of {seeds.Count} seeds in {total.Elapsed.TotalSeconds:F2} s: "
            + $"{parsed} parsed, {refused} refused; slowest {slowest.TotalMilliseconds:F1} ms, "
            + $"most allocated {mostAllocated / 1024.0:F0} KB. Most frequent refusals:");
        foreach (var (reason, n) in reasons.OrderByDescending(r => r.Value).Take(12)) output.WriteLine($"  {n,5}  {reason}");
        output.WriteLine($"  ({reasons.Count} kinds in all)");
        // A mutator that never gets past the first checks tests little: both outcomes must occur.
        Assert.True(parsed > 0 && refused > 0, $"{parsed} parsed, {refused} refused");
    }

    /// <summary>A refusal's kind for the report: the message with numbers and quoted names blanked, cut short.</summary>
    public static string Reason(string message)
    {
        string kind = System.Text.RegularExpressions.Regex.Replace(message, @"'[^']*'|""[^""]*""|\d+", "#");
        return kind.Length > 90 ? kind[..90] : kind;
    }

    /// <summary>An input for a failure message: printable ASCII as is, other bytes as \xNN, cut at 2000 characters.</summary>
    public static string Show(byte[] input)
    {
        var text = new StringBuilder();
        foreach (byte b in input)
        {
            if (text.Length > 2000) return text.Append("...").ToString();
            if (b is >= 0x20 and < 0x7F and not (byte)'\\') text.Append((char)b);
            else text.Append($"\\x{b:X2}");
        }
        return text.ToString();
    }
}
