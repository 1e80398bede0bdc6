using Attention.Reference.Cases;
using Attention.Reference.IO;
using Attention.Reference.Models;
using Attention.Reference.Tensors;

namespace Attention.Reference.Tests.Networks;

/// <summary>The PyTorch 1.13 network cases (copied into testdata/) and random tiny networks for gradient checks.</summary>
public static class NetworkTestData
{
    /// <summary>The network pack in the test output directory.</summary>
    public static string Folder => Path.Combine(AppContext.BaseDirectory, "testdata", "pytorch-1.13-networks");

    /// <summary>The folder of one case.</summary>
    public static string CasePath(string name) => Path.Combine(Folder, name);

    /// <summary>
    /// The pack's check rule (its README): |a − e| ≤ rtol·(|e| + 0.01·max|e| of the tensor) + 64·2⁻⁵²·S, S the largest
    /// |e| of the whole expected file; every expected tensor must be present with its shape; non-finite values fail.
    /// Returns the failures, one line each, in the expected file's order.
    /// </summary>
    public static List<string> CheckRule(IReadOnlyList<StoredTensor> expected, TensorSet<double> actual, double rtol = 1e-10)
    {
        double s = expected.SelectMany(t => t.Values).Where(double.IsFinite).Select(Math.Abs).DefaultIfEmpty(0).Max();
        double floor = 64 * Math.Pow(2, -52) * s;
        var failures = new List<string>();
        foreach (var e in expected)
        {
            var a = actual.TryGet(e.Name);
            if (a is null) { failures.Add($"{e.Name}: missing"); continue; }
            if (!a.HasShape(e.Shape)) { failures.Add($"{e.Name}: shape {a.ShapeString}, expected {ShapeUtil.Format(e.Shape)}"); continue; }
            double maxE = e.Values.Select(Math.Abs).DefaultIfEmpty(0).Max(), worst = 0;
            for (int i = 0; i < e.Values.Length; i++)
            {
                double ev = e.Values[i], av = a.Data[i];
                double tol = rtol * (Math.Abs(ev) + 0.01 * maxE) + floor;
                double ratio = double.IsFinite(av) && double.IsFinite(ev) ? Math.Abs(av - ev) / tol : double.PositiveInfinity;
                worst = Math.Max(worst, ratio);
            }
            if (!(worst <= 1)) failures.Add($"{e.Name}: error ratio {worst:E3}");
        }
        return failures;
    }

    /// <summary>
    /// A random state_dict for <paramref name="net"/> with the pack's distributions: conv/linear weights
    /// U(±1/√fan_in), biases N(0, 0.05), BatchNorm γ U(0.5, 1.5), β N(0, 0.1), running mean N(0, 0.05), running var
    /// U(0.5, 1.5), GCT α U(0.5, 1.5), γ N(0, 0.5), β N(0, 0.3).
    /// </summary>
    public static TensorSet<double> RandomStateDict(Network<double> net, int seed)
    {
        var rng = new Random(seed);
        double Normal(double sd) => sd * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        double Uniform(double lo, double hi) => lo + (hi - lo) * rng.NextDouble();
        var set = new TensorSet<double>($"random {net.Name} state_dict");
        var bns = net.Root.NamedModules().Where(m => m.Module.Kind == "BatchNorm2d").Select(m => m.Path + ".").ToHashSet();
        foreach (var (name, p) in net.Root.NamedTensors())
        {
            var t = p.Value.ZerosLike();
            string leaf = name[(name.LastIndexOf('.') + 1)..];
            bool bn = bns.Any(b => name.StartsWith(b, StringComparison.Ordinal) && name.Length > b.Length && !name[b.Length..].Contains('.'));
            int fanIn = t.Rank >= 2 ? t.Length / t.Dim(0) : 1;
            for (int i = 0; i < t.Length; i++)
                t.Data[i] = (leaf, bn) switch
                {
                    ("weight", true) => Uniform(0.5, 1.5),
                    ("bias", true) => Normal(0.1),
                    ("running_mean", _) => Normal(0.05),
                    ("running_var", _) => Uniform(0.5, 1.5),
                    ("weight", false) => Uniform(-1, 1) / Math.Sqrt(fanIn),
                    ("bias", false) => Normal(0.05),
                    ("alpha", _) => Uniform(0.5, 1.5),
                    ("gamma", _) => Normal(0.5),
                    ("beta", _) => Normal(0.3),
                    _ => throw new InvalidOperationException($"no distribution for '{name}'"),
                };
            set.Set(name, t);
        }
        return set;
    }

    /// <summary>Standard-normal x [n, 3, size, size] and y.grad [n, classes].</summary>
    public static TensorSet<double> RandomInputs(int n, int size, int classes, int seed)
    {
        var rng = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        var inputs = new TensorSet<double>("inputs");
        var x = new DenseTensor<double>(n, 3, size, size);
        for (int i = 0; i < x.Length; i++) x.Data[i] = Normal();
        var dy = new DenseTensor<double>(n, classes);
        for (int i = 0; i < dy.Length; i++) dy.Data[i] = Normal();
        inputs.Set("x", x);
        inputs.Set("y.grad", dy);
        return inputs;
    }

    /// <summary>The output of a <see cref="CaseModule"/> run, with the module dump.</summary>
    public static (TensorSet<double> Outputs, TensorSet<double> Dump) RunWithDump(CaseFolder folder)
    {
        var dump = new TensorSet<double>("dump");
        var outputs = folder.Run<double>(new RunOptions { ModuleOutput = (n, v) => dump.Set(n, v) });
        return (outputs, dump);
    }
}
