using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using Attention.Reference.Layers;
using Attention.Reference.Models;
using Attention.Reference.Tensors;

namespace Attention.Cli.Bench;

/// <summary>One row of <c>attention-ref bench net</c>.</summary>
public sealed record NetBenchResult(string Model, string DType, string Pass, int Size, int Batch, int Threads, double Ms)
{
    /// <summary>One JSON object on one line.</summary>
    public string ToJson() => string.Create(CultureInfo.InvariantCulture,
        $"{{\"model\": \"{Model}\", \"dtype\": \"{DType}\", \"pass\": \"{Pass}\", \"size\": {Size}, \"batch\": {Batch}, \"threads\": {Threads}, \"ms\": {Ms:0.0}}}");

    /// <summary>One line of the table.</summary>
    public string ToRow() => string.Create(CultureInfo.InvariantCulture,
        $"{Model,-20} {DType,-8} {Pass,-17} {Size,5} {Batch,5} {Threads,7} {Ms,10:0.0}");
}

/// <summary>
/// Times a whole network: forward (inference, nothing kept) and forward + backward (x.grad and every parameter
/// gradient), eval mode, random weights (RandomWeights), the median of at least three runs after one warm-up run.
/// </summary>
public static class NetBench
{
    /// <summary>The table header.</summary>
    public const string Header = "model                dtype    pass               size batch threads         ms";

    /// <summary>Runs the measurements for one model.</summary>
    public static IEnumerable<NetBenchResult> Run(string model, IReadOnlyList<string> dtypes, int size, int batch, int threads, double minSeconds)
    {
        foreach (var dtype in dtypes)
        {
            var rows = dtype == "float32" ? Measure<float>(model, size, batch, threads, minSeconds) : Measure<double>(model, size, batch, threads, minSeconds);
            foreach (var r in rows) yield return r;
        }
    }

    private static IEnumerable<NetBenchResult> Measure<T>(string model, int size, int batch, int threads, double minSeconds)
        where T : IFloatingPointIeee754<T>
    {
        var oracle = ModelZoo.Create<double>(model);
        var net = ModelZoo.Create<T>(model);
        net.LoadStateDict(RandomWeights.StateDict(oracle, 1).Cast<T>());
        var rng = new Random(2);
        var x = new DenseTensor<T>(batch, 3, size, size);
        for (int i = 0; i < x.Length; i++) x.Data[i] = T.CreateChecked(rng.NextDouble() * 2 - 1);
        string dtype = typeof(T) == typeof(float) ? "float32" : "float64";
        var kernels = typeof(T) == typeof(float) ? KernelPath.Fast : KernelPath.Oracle;
        var y = net.Forward(x, new Pass<T> { RecordTape = false, Kernels = kernels });
        var dy = y.ZerosLike();
        for (int i = 0; i < dy.Length; i++) dy.Data[i] = T.CreateChecked(rng.NextDouble() * 2 - 1);

        yield return new NetBenchResult(model, dtype, "forward", size, batch, threads,
            Median(() => net.Forward(x, new Pass<T> { RecordTape = false, Kernels = kernels }), minSeconds));
        yield return new NetBenchResult(model, dtype, "forward+backward", size, batch, threads,
            Median(() => net.Run(x, dy, training: false, kernels), minSeconds));
    }

    private static double Median(Action action, double minSeconds)
    {
        action();
        var samples = new List<double>();
        var total = Stopwatch.StartNew();
        while (samples.Count < 3 || (total.Elapsed.TotalSeconds < minSeconds && samples.Count < 100))
        {
            var sw = Stopwatch.StartNew();
            action();
            samples.Add(sw.Elapsed.TotalMilliseconds);
        }
        samples.Sort();
        return samples[samples.Count / 2];
    }
}
