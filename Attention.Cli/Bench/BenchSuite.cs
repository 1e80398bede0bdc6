using System.Diagnostics;
using System.Globalization;

namespace Attention.Cli.Bench;

/// <summary>One measured row of <c>attention-ref bench</c>.</summary>
/// <param name="Layer">What was measured: a layer name such as "3x3_64_64_56", or a module shape.</param>
/// <param name="DType">"float32" or "float64".</param>
/// <param name="Pass">"forward", "backward" or "forward+backward".</param>
/// <param name="Ms">Median milliseconds per call.</param>
/// <param name="GFlops">Billions of floating-point operations per second, where a FLOP count is defined.</param>
/// <param name="Threads">Threads used.</param>
/// <param name="GBps">
/// Billions of bytes per second of compulsory memory traffic (each tensor read or written once), where defined:
/// the measure for memory-bound kernels, to put beside the machine's bandwidth row.
/// </param>
/// <param name="MinMs">The fastest batch's milliseconds per call, where measured (libtorch-bench reports its best run).</param>
public sealed record BenchResult(string Layer, string DType, string Pass, double Ms, double? GFlops, int Threads, double? GBps = null,
    double? MinMs = null)
{
    /// <summary>One JSON object on one line.</summary>
    public string ToJson() =>
        string.Create(CultureInfo.InvariantCulture,
            $"{{\"layer\": \"{Layer}\", \"dtype\": \"{DType}\", \"pass\": \"{Pass}\", \"ms\": {Ms:0.####}, \"gflops\": {Num(GFlops)}, \"threads\": {Threads}, \"gbps\": {Num(GBps)}, \"min_ms\": {NumMs(MinMs)}}}");

    private static string Num(double? v) => v is { } x ? x.ToString("0.#", CultureInfo.InvariantCulture) : "null";

    private static string NumMs(double? v) => v is { } x ? x.ToString("0.####", CultureInfo.InvariantCulture) : "null";
}

/// <summary>Settings shared by every suite.</summary>
/// <param name="Threads">Threads for the parallel loops.</param>
/// <param name="MinSeconds">Time each measurement should take at least (after warm-up).</param>
/// <param name="DTypes">Which of "float32" and "float64" to run.</param>
public sealed record BenchSettings(int Threads, double MinSeconds, IReadOnlyList<string> DTypes);

/// <summary>A group of measurements, e.g. "conv" or "se".</summary>
public interface IBenchSuite
{
    /// <summary>The name after <c>attention-ref bench</c>.</summary>
    string Name { get; }

    /// <summary>One line for the help text.</summary>
    string Description { get; }

    /// <summary>Runs the measurements, yielding each row as soon as it is measured.</summary>
    IEnumerable<BenchResult> Run(BenchSettings settings);
}

/// <summary>Times an action: warm-up, then batches until the minimum time is reached; reports the median batch.</summary>
public static class BenchTimer
{
    /// <summary>Median milliseconds per call of <paramref name="action"/>.</summary>
    public static double MedianMs(Action action, double minSeconds) => Time(action, minSeconds).Median;

    /// <summary>
    /// Median, 90th percentile and minimum milliseconds per call of <paramref name="action"/> over batches of at least
    /// <paramref name="batchSeconds"/> (0: one call per sample), at least five samples and <paramref name="minSeconds"/>,
    /// at most <paramref name="maxSamples"/>.
    /// </summary>
    public static BenchTiming Time(Action action, double minSeconds, double batchSeconds = 0.02, int maxSamples = 1000)
    {
        // Warm-up: JIT tiers, workspaces, page faults of fresh buffers. At least three calls and 0.2 s (or 1 s when the
        // measurement itself is longer), so a short --min-seconds never times a cold path.
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 3 || warm.Elapsed.TotalSeconds < Math.Min(1.0, Math.Max(0.2, minSeconds)); i++) action();
        var sw = Stopwatch.StartNew();
        action();
        double once = Math.Max(sw.Elapsed.TotalSeconds, 1e-7);
        int perBatch = Math.Max(1, (int)(batchSeconds / once));
        var samples = new List<double>();
        var total = Stopwatch.StartNew();
        while (samples.Count < 5 || (total.Elapsed.TotalSeconds < minSeconds && samples.Count < maxSamples))
        {
            sw.Restart();
            for (int i = 0; i < perBatch; i++) action();
            samples.Add(sw.Elapsed.TotalMilliseconds / perBatch);
        }
        samples.Sort();
        int p90 = Math.Min(samples.Count - 1, (int)Math.Ceiling(0.9 * samples.Count) - 1);
        return new BenchTiming(samples[samples.Count / 2], samples[p90], samples[0]);
    }
}

/// <summary>Milliseconds per call: the median, 90th percentile and minimum of the samples.</summary>
public readonly record struct BenchTiming(double Median, double P90, double Min);

/// <summary>The suites <c>attention-ref bench</c> knows, one registration line each.</summary>
public static class BenchSuites
{
    /// <summary>Every suite, by name.</summary>
    public static IReadOnlyList<IBenchSuite> All { get; } =
    [
        // new ConvBench(), new SeBench(), new CaBench(), new GctBench(),
        new ConvBench(),
        new SeBench(),
        new CaBench(),
        new GctBench(),
    ];
}
