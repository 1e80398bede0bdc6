using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using Attention.Reference.Kernels;
using Attention.Reference.Layers;
using Attention.Reference.Models;
using Attention.Reference.Tensors;

namespace Attention.Cli.Bench;

/// <summary>One row of <c>attention-ref bench net</c>.</summary>
public sealed record NetBenchResult(string Model, string DType, string Pass, int Size, int Batch, int Threads, double Ms,
    double P90Ms = double.NaN, double PeakMb = double.NaN, double GFlops = double.NaN, double MinMs = double.NaN)
{
    /// <summary>One JSON object on one line (p90_ms, peak_mb, gflops, min_ms: null where not measured).</summary>
    public string ToJson() => string.Create(CultureInfo.InvariantCulture,
        $"{{\"model\": \"{Model}\", \"dtype\": \"{DType}\", \"pass\": \"{Pass}\", \"size\": {Size}, \"batch\": {Batch}, \"threads\": {Threads}, \"ms\": {Ms:0.0}, \"p90_ms\": {Num(P90Ms)}, \"peak_mb\": {Num(PeakMb)}, \"gflops\": {Num(GFlops)}, \"min_ms\": {Num(MinMs)}}}");

    /// <summary>One table row.</summary>
    public string ToRow() => string.Create(CultureInfo.InvariantCulture,
        $"{Model,-20} {DType,-8} {Pass,-17} {Size,5} {Batch,5} {Threads,7} {Ms,10:0.0} {P90Ms,8:0.0} {GFlops,8:0.0} {PeakMb,8:0} {MinMs,8:0.0}");

    private static string Num(double v) => double.IsFinite(v) ? v.ToString("0.0", CultureInfo.InvariantCulture) : "null";
}

public static class NetBench
{
    /// <summary>The table header.</summary>
    public const string Header = "model                dtype    pass               size batch threads         ms   p90_ms  GFLOP/s  peak_MB   min_ms";

    /// <summary>Runs the measurements for one model.</summary>
    public static IEnumerable<NetBenchResult> Run(string model, IReadOnlyList<string> dtypes, int size, int batch, int threads, double minSeconds,
        bool winograd = true)
    {
        foreach (var dtype in dtypes)
        {
            var rows = dtype == "float32" ? Measure<float>(model, size, batch, threads, minSeconds, winograd)
                : Measure<double>(model, size, batch, threads, minSeconds, winograd);
            foreach (var r in rows) yield return r;
        }
    }

    private static IEnumerable<NetBenchResult> Measure<T>(string model, int size, int batch, int threads, double minSeconds, bool winograd)
        where T : IFloatingPointIeee754<T>
    {
        var oracle = ModelZoo.Create<double>(model);
        var weights = RandomWeights.StateDict(oracle, 1).Cast<T>();
        var net = Loaded(model, weights);
        var rng = new Random(2);
        var x = new DenseTensor<T>(batch, 3, size, size);
        for (int i = 0; i < x.Length; i++) x.Data[i] = T.CreateChecked(rng.NextDouble() * 2 - 1);
        string dtype = typeof(T) == typeof(float) ? "float32" : "float64";
        var kernels = typeof(T) == typeof(float) ? KernelPath.Fast : KernelPath.Oracle;
        var y = net.Forward(x, new Pass<T> { RecordTape = false, Kernels = kernels });
        var dy = y.ZerosLike();
        for (int i = 0; i < dy.Length; i++) dy.Data[i] = T.CreateChecked(rng.NextDouble() * 2 - 1);

        double flops = 2 * Macs(oracle, x.ShapeArray());
        var (fm, fp, fmin) = Timed(() => net.Forward(x, new Pass<T> { RecordTape = false, Kernels = kernels }), minSeconds);
        if (typeof(T) == typeof(float))
        {
            // float32 "forward" is the compiled inference plan (a second instance of the network, rewritten), writing
            // its logits into a preallocated tensor (a steady-state forward allocates nothing).
            var plan = InferencePlan<T>.Compile(Loaded(model, weights), new InferencePlanOptions { Winograd = winograd });
            var logits = plan.Forward(x);
            (fm, fp, fmin) = Timed(() => plan.Forward(x, logits), minSeconds);
        }
        yield return new NetBenchResult(model, dtype, "forward", size, batch, threads, fm, fp, PeakMb(), flops / (fm * 1e6), fmin);
        var (bm, bp, bmin) = Timed(() => net.Run(x, dy, training: false, kernels), minSeconds);
        yield return new NetBenchResult(model, dtype, "forward+backward", size, batch, threads, bm, bp, PeakMb(), 3 * flops / (bm * 1e6), bmin);
    }

    /// <summary>
    /// The vector path and, for each distinct convolution call (pass, shape, input size), the algorithm the fast kernels
    /// chose, recorded while the float32 plan runs one forward and the eager float32 network one backward.
    /// </summary>
    public static IEnumerable<string> Explain(string model, int size, int batch, bool winograd)
    {
        var oracle = ModelZoo.Create<double>(model);
        var weights = RandomWeights.StateDict(oracle, 1).Cast<float>();
        var x = new DenseTensor<float>(batch, 3, size, size);
        var plan = InferencePlan<float>.Compile(Loaded(model, weights), new InferencePlanOptions { Winograd = winograd });
        var net = Loaded(model, weights);
        var calls = KernelDecisions.Record(() => plan.Forward(x)).ToList();
        var y = net.Forward(x, new Pass<float> { RecordTape = false, Kernels = KernelPath.Fast });
        calls.AddRange(KernelDecisions.Record(() => net.Run(x, y.ZerosLike(), training: false, KernelPath.Fast))
            .Where(d => d.Pass != "forward"));
        yield return $"{model}, float32, batch {batch}, {size}x{size}, {Compute.MaxThreads} threads; vector path {KernelDecisions.Path}; " +
                     $"Winograd {(winograd ? "on" : "off")} ({calls.Count} convolution passes: forward of the plan, backward of the eager network)";
        yield return $"{"count",5}  {"pass",-15}  {"input",-11}  {"convolution",-26}  algorithm";
        foreach (var group in calls.GroupBy(d => (d.Pass, d.Geometry, d.N, d.H, d.W, d.Algorithm)))
        {
            var (pass, g, n, h, w, algorithm) = group.Key;
            string shape = $"{g.InChannels}->{g.OutChannels} {g.Kernel.H}x{g.Kernel.W}/{g.Stride.H}" +
                           (g.Padding != (0, 0) ? $" p{g.Padding.H}" : "") + (g.Groups > 1 ? $" g{g.Groups}" : "") +
                           (g.Dilation != (1, 1) ? $" d{g.Dilation.H}" : "");
            yield return $"{group.Count(),5}  {pass,-15}  {$"{n}x{h}x{w}",-11}  {shape,-26}  {algorithm}";
        }
    }

    /// <summary>
    /// Where the float32 plan's forward spends its time (<see cref="InferencePlan{T}.Profile"/>): one line per kind of
    /// step with its calls, milliseconds (least over the rounds) and share of their sum, the slowest first.
    /// </summary>
    public static IEnumerable<string> Profile(string model, int size, int batch, bool winograd, double minSeconds)
    {
        var weights = RandomWeights.StateDict(ModelZoo.Create<double>(model), 1).Cast<float>();
        var plan = InferencePlan<float>.Compile(Loaded(model, weights), new InferencePlanOptions { Winograd = winograd });
        var rng = new Random(2);
        var x = new DenseTensor<float>(batch, 3, size, size);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rng.NextDouble() * 2 - 1);
        // Warm up as the timings do (the JIT's tiers settle, the kernels keep their packings), then one second's worth of
        // rounds, at least ten.
        var y = plan.Forward(x);
        var clock = Stopwatch.StartNew();
        int warm = 0;
        while (clock.Elapsed.TotalSeconds < Math.Max(1, minSeconds) || warm < 10) { plan.Forward(x, y); warm++; }
        int rounds = (int)Math.Clamp(warm * minSeconds / clock.Elapsed.TotalSeconds, 10, 1000);
        var steps = plan.Profile(x, rounds);
        double total = steps.Sum(s => s.Milliseconds);
        yield return string.Create(CultureInfo.InvariantCulture,
            $"{model}, float32 plan, batch {batch}, {size}x{size}, {Compute.MaxThreads} threads, vector path {KernelDecisions.Path}; " +
            $"least time over {rounds} forwards per step, {total:0.00} ms in all");
        yield return $"{"ms",8} {"share",6} {"calls",5}  step";
        foreach (var s in steps)
            yield return string.Create(CultureInfo.InvariantCulture, $"{s.Milliseconds,8:0.000} {s.Milliseconds / total,6:P1} {s.Calls,5}  {s.Step}");
    }

    private static Network<T> Loaded<T>(string model, TensorSet<T> weights) where T : IFloatingPointIeee754<T>
    {
        var net = ModelZoo.Create<T>(model);
        net.LoadStateDict(weights);
        return net;
    }

    /// <summary>The process's peak resident memory so far, in MiB.</summary>
    private static double PeakMb()
    {
        using var p = Process.GetCurrentProcess();
        return p.PeakWorkingSet64 / (1024.0 * 1024.0);
    }

    /// <summary>
    /// Multiply-adds of one forward pass: every convolution (O·Ho·Wo·(I/G)·kh·kw per image) and linear layer
    /// (out·in per position), read from the module output shapes of one oracle forward.
    /// </summary>
    private static double Macs(Network<double> net, int[] shape)
    {
        var modules = net.Root.NamedModules().ToDictionary(m => m.Path, m => m.Module);
        double macs = 0;
        var x = new DenseTensor<double>(shape);
        net.Forward(x, new Pass<double>
        {
            RecordTape = false,
            OnModuleOutput = (name, y) =>
            {
                string path = name.Split('#')[0];
                if (!modules.TryGetValue(path, out var m)) return;
                double positions = y.Length / (double)y.Dim(1);
                if (m is Conv2dLayer<double> c) macs += positions * c.Geometry.OutChannels * c.Geometry.ReductionLength;
                else if (m is Linear<double> l) macs += positions * l.Out * l.In;
            },
        });
        return macs;
    }

    /// <summary>One call per sample (a network forward is long enough), at most 100 samples, after BenchTimer's warm-up.</summary>
    private static BenchTiming Timed(Action action, double minSeconds) =>
        BenchTimer.Time(action, minSeconds, batchSeconds: 0, maxSamples: 100);
}
