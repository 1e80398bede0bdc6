using Attention.Reference.Cases;
using Attention.Reference.IO;
using Attention.Reference.Layers;
using Attention.Reference.Models;

namespace Attention.Reference.Tests.Models;

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

    /// <summary>A random state_dict (the library's generator).</summary>
    public static TensorSet<double> RandomStateDict(Network<double> net, int seed) => RandomWeights.StateDict(net, seed);

    /// <summary>Standard-normal x [n, 3, size, size] and y.grad [n, classes].</summary>
    public static TensorSet<double> RandomInputs(int n, int size, int classes, int seed) => RandomWeights.Inputs(n, size, classes, seed);

    /// <summary>The output of a <see cref="ModelFactory"/> run, with the module dump.</summary>
    public static (TensorSet<double> Outputs, TensorSet<double> Dump) RunWithDump(CaseFolder folder,
        GradConventions conventions = GradConventions.Exact)
    {
        var dump = new TensorSet<double>("dump");
        var outputs = folder.Run<double>(new RunOptions { ModuleOutput = (n, v) => dump.Set(n, v), Conventions = conventions });
        return (outputs, dump);
    }
}
