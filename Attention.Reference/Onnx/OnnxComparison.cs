namespace Attention.Reference.Onnx;

/// <summary>One node output compared against the float64 oracle.</summary>
/// <param name="Node">The node's index (topological order).</param>
/// <param name="OpType">The node's operator.</param>
/// <param name="Output">The ONNX tensor name.</param>
/// <param name="Shape">The oracle's shape.</param>
/// <param name="MaxAbs">max |actual − oracle|.</param>
/// <param name="Scale">max |oracle|.</param>
/// <param name="Tolerance">The allowed max |actual − oracle| (see <see cref="OnnxComparison"/>).</param>
/// <param name="Problem">Why the output could not be compared (missing, shape), else null.</param>
public sealed record OnnxNodeError(int Node, string OpType, string Output, int[] Shape, double MaxAbs, double Scale, double Tolerance, string? Problem)
{
    /// <summary>max |Δ| / max |oracle| (0 for an all-zero oracle with no error).</summary>
    public double Relative => Scale > 0 ? MaxAbs / Scale : MaxAbs > 0 ? double.PositiveInfinity : 0;

    /// <summary>Beyond the tolerance, or not comparable.</summary>
    public bool Over => Problem is not null || !(MaxAbs <= Tolerance);
}

/// <summary>
/// Node-by-node comparison of another backend's outputs with the float64 oracle. The tolerance of each node output
/// is derived from the float32 rounding of the computation itself: the oracle evaluates the same graph once more in
/// float32 (same operators, same orders), and a float32 backend is allowed 8× that evaluation's deviation from float64,
/// plus 16 float32 units (2^-24) of the output's largest magnitude. A float32 implementation that sums in another
/// order or uses another algorithm (GEMM, Winograd) stays well inside it; one that loses precision somewhere
/// (a float16 accumulator, a wrong constant, a different formula) shows up at the first node it affects.
/// </summary>
public static class OnnxComparison
{
    /// <summary>The allowed multiple of the float32 evaluation's deviation.</summary>
    public const double Factor = 8;

    /// <summary>Floor in float32 units of the largest magnitude.</summary>
    public const double Ulps = 16;

    /// <summary>Compares every node output of <paramref name="model"/> that <paramref name="actual"/> holds.</summary>
    /// <param name="model">The model (node order and operators).</param>
    /// <param name="oracle">The float64 dump.</param>
    /// <param name="oracle32">The float32 dump of the same graph (for the tolerance).</param>
    /// <param name="actual">The other backend's values by ONNX name, or null when it lacks that tensor.</param>
    /// <param name="requireAll">Report a missing tensor as a problem (true for a backend asked for every output).</param>
    public static List<OnnxNodeError> Compare(OnnxModel model, TensorSet<double> oracle, TensorSet<float> oracle32,
        Func<string, DenseTensor<double>?> actual, bool requireAll)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(oracle);
        ArgumentNullException.ThrowIfNull(oracle32);
        ArgumentNullException.ThrowIfNull(actual);
        var rows = new List<OnnxNodeError>();
        for (int n = 0; n < model.Graph.Node.Count; n++)
        {
            var node = model.Graph.Node[n];
            foreach (var name in node.Output)
            {
                if (name.Length == 0 || oracle.TryGet(name) is not { } o) continue;
                var shape = o.ShapeArray();
                var a = actual(name);
                if (a is null)
                {
                    if (requireAll) rows.Add(new(n, node.OpType, name, shape, double.NaN, double.NaN, double.NaN, "missing"));
                    continue;
                }
                if (!a.HasShape(shape))
                {
                    rows.Add(new(n, node.OpType, name, shape, double.NaN, double.NaN, double.NaN, $"shape {a.ShapeString}, oracle {o.ShapeString}"));
                    continue;
                }
                var o32 = oracle32.Get(name);
                double scale = 0, maxAbs = 0, dev32 = 0;
                for (int i = 0; i < o.Length; i++)
                {
                    double e = o.Data[i];
                    scale = Math.Max(scale, Math.Abs(e));
                    double d = Math.Abs(a.Data[i] - e);
                    if (double.IsNaN(d) && !(double.IsNaN(a.Data[i]) && double.IsNaN(e))) d = double.PositiveInfinity;
                    if (!double.IsNaN(d)) maxAbs = Math.Max(maxAbs, d);
                    double d32 = Math.Abs(o32.Data[i] - e);
                    if (!double.IsNaN(d32)) dev32 = Math.Max(dev32, d32);
                }
                double tol = Factor * dev32 + Ulps * Math.Pow(2, -24) * scale;
                rows.Add(new(n, node.OpType, name, shape, maxAbs, scale, tol, null));
            }
        }
        return rows;
    }
}
