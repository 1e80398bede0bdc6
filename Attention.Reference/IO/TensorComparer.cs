using System.Globalization;
using Attention.Reference.Tensors;

namespace Attention.Reference.IO;

/// <summary>How one actual tensor compares with its expected tensor.</summary>
public sealed record TensorComparison
{
    /// <summary>The tensor's name.</summary>
    public required string Name { get; init; }
    /// <summary>Why the comparison could not be made (missing tensor, shape mismatch), or null.</summary>
    public string? Problem { get; init; }
    /// <summary>The relative tolerance used.</summary>
    public double RTol { get; init; }
    /// <summary>The absolute tolerance used.</summary>
    public double ATol { get; init; }
    /// <summary>max |a − e|.</summary>
    public double MaxAbsError { get; init; }
    /// <summary>max |a − e| / |e| over elements with e ≠ 0.</summary>
    public double MaxRelError { get; init; }
    /// <summary>The largest distance in units in the last place (in the coarser of the two dtypes).</summary>
    public double MaxUlps { get; init; }
    /// <summary>The element with the largest violation ratio |a − e| / (atol + rtol·|e|), as a multi-index.</summary>
    public int[] WorstIndex { get; init; } = [];
    /// <summary>Expected value at the worst index.</summary>
    public double WorstExpected { get; init; }
    /// <summary>Actual value at the worst index.</summary>
    public double WorstActual { get; init; }
    /// <summary>The largest |a − e| / (atol + rtol·|e|) over the elements; +∞ when a NaN or infinity disagrees.</summary>
    public double WorstRatio { get; init; }
    /// <summary>How many elements break |a − e| ≤ atol + rtol·|e| (NaN against non-NaN counts).</summary>
    public long Violations { get; init; }
    /// <summary>True when the shapes agree and every element is within tolerance.</summary>
    public bool Passed => Problem is null && Violations == 0;

    /// <summary>A one-line summary.</summary>
    public override string ToString() => Problem is not null
        ? $"{Name}: FAIL {Problem}"
        : string.Create(CultureInfo.InvariantCulture,
            $"{Name}: {(Passed ? "ok  " : "FAIL")} max_abs={MaxAbsError:0.000E+00} max_rel={MaxRelError:0.000E+00} ulps={MaxUlps:0} worst=[{string.Join(",", WorstIndex)}] e={WorstExpected:R} a={WorstActual:R} atol={ATol:E2} rtol={RTol:E1}{(Violations > 0 ? $" violations={Violations}" : "")}");
}

/// <summary>
/// Element-wise comparison under |a − e| ≤ atol + rtol·|e|. Defaults: rtol 1e-10 when both sides are float64, 1e-5
/// when either is float32 (or narrower); atol = rtol × max|e| of that tensor, so an element that cancels to near
/// zero is judged against the tensor's scale.
/// <para>
/// Noise floor: when a file of several tensors is compared, the default atol is never below 64·ε·S, where S is the
/// largest |e| over every tensor of the expected file and ε the machine epsilon of the coarser dtype. A tensor that is
/// zero in exact arithmetic (e.g. the gradient of a bias that feeds a training-mode BatchNorm) holds only rounding
/// noise of size ~ε·S on both sides; judged against its own scale it could never agree. For any tensor whose scale is
/// not far below S the floor is far below rtol × max|e| and changes nothing. An explicit atol disables it.
/// </para>
/// </summary>
public static class TensorComparer
{
    /// <summary>The noise floor factor: default atol ≥ <see cref="NoiseFloorUlps"/> · ε · S.</summary>
    public const double NoiseFloorUlps = 64;

    /// <summary>
    /// Pairs every expected tensor with the actual of the same name and compares them, with the file's noise floor
    /// (see the class remarks). A missing actual tensor is a failed comparison.
    /// </summary>
    public static List<TensorComparison> CompareSets(IReadOnlyList<StoredTensor> expected, IReadOnlyList<StoredTensor> actual,
        double? rtol = null, double? atol = null, string actualDescription = "actual")
    {
        var byName = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        foreach (var t in actual) byName[t.Name] = t;
        double scale = 0;
        foreach (var e in expected) scale = Math.Max(scale, MaxAbsFinite(e.Values));
        return expected.Select(e => byName.TryGetValue(e.Name, out var a)
                ? Compare(e, a, rtol, atol, scale)
                : new TensorComparison { Name = e.Name, Problem = $"missing from {actualDescription}" })
            .ToList();
    }

    /// <summary>The default relative tolerance for a pair of stored types.</summary>
    public static double DefaultRTol(StoredDType expected, StoredDType actual) =>
        expected == StoredDType.F64 && actual == StoredDType.F64 ? 1e-10 : 1e-5;

    /// <summary>Compares two stored tensors.</summary>
    /// <param name="expected">The expected tensor.</param>
    /// <param name="actual">The actual tensor.</param>
    /// <param name="rtol">Relative tolerance (default by dtype).</param>
    /// <param name="atol">Absolute tolerance (default rtol × max|e|, with the noise floor).</param>
    /// <param name="fileScale">S, the largest |e| of the expected file, for the noise floor; null for this tensor's own.</param>
    public static TensorComparison Compare(StoredTensor expected, StoredTensor actual, double? rtol = null, double? atol = null, double? fileScale = null)
    {
        double r = rtol ?? DefaultRTol(expected.DType, actual.DType);
        bool single = expected.DType != StoredDType.F64 || actual.DType != StoredDType.F64;
        if (atol is null)
        {
            double epsilon = single ? Math.Pow(2, -23) : Math.Pow(2, -52);
            double floor = NoiseFloorUlps * epsilon * (fileScale ?? MaxAbsFinite(expected.Values));
            atol = Math.Max(r * MaxAbsFinite(expected.Values), floor);
        }
        if (!expected.Shape.AsSpan().SequenceEqual(actual.Shape))
            return new TensorComparison
            {
                Name = expected.Name, RTol = r,
                Problem = $"shape {ShapeUtil.Format(actual.Shape)}, expected {ShapeUtil.Format(expected.Shape)}",
            };
        return Compare(expected.Name, expected.Values, actual.Values, expected.Shape, r, atol, single);
    }

    /// <summary>Compares two arrays of the same shape. <paramref name="single"/> measures ULPs in float32.</summary>
    public static TensorComparison Compare(string name, double[] expected, double[] actual, int[] shape, double rtol, double? atol = null, bool single = false)
    {
        if (expected.Length != actual.Length)
            return new TensorComparison { Name = name, RTol = rtol, Problem = $"{actual.Length} elements, expected {expected.Length}" };
        double a0 = atol ?? rtol * MaxAbsFinite(expected);
        double maxAbs = 0, maxRel = 0, maxUlps = 0, worstRatio = -1;
        long violations = 0;
        int worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            double ratio;
            if (double.IsNaN(e) || double.IsNaN(a))
            {
                ratio = double.IsNaN(e) && double.IsNaN(a) ? 0 : double.PositiveInfinity;
            }
            else if (double.IsInfinity(e) || double.IsInfinity(a))
            {
                ratio = e == a ? 0 : double.PositiveInfinity;
            }
            else
            {
                double diff = Math.Abs(a - e);
                maxAbs = Math.Max(maxAbs, diff);
                if (e != 0) maxRel = Math.Max(maxRel, diff / Math.Abs(e));
                maxUlps = Math.Max(maxUlps, single ? UlpsSingle((float)e, (float)a) : UlpsDouble(e, a));
                double bound = a0 + rtol * Math.Abs(e);
                ratio = diff == 0 ? 0 : bound == 0 ? double.PositiveInfinity : diff / bound;
            }
            if (ratio > 1) violations++;
            if (ratio > worstRatio) { worstRatio = ratio; worst = i; }
        }
        return new TensorComparison
        {
            Name = name, RTol = rtol, ATol = a0, MaxAbsError = maxAbs, MaxRelError = maxRel, MaxUlps = maxUlps,
            WorstIndex = Unravel(worst, shape), WorstExpected = expected.Length > 0 ? expected[worst] : 0,
            WorstActual = actual.Length > 0 ? actual[worst] : 0, Violations = violations, WorstRatio = Math.Max(worstRatio, 0),
        };
    }

    private static double MaxAbsFinite(double[] values)
    {
        double scale = 0;
        foreach (double v in values) if (double.IsFinite(v)) scale = Math.Max(scale, Math.Abs(v));
        return scale;
    }

    /// <summary>Distance in float64 ULPs (0 for equal values, +0 and −0 equal).</summary>
    public static double UlpsDouble(double a, double b) => Math.Abs((double)(Ordered(a) - Ordered(b)));

    /// <summary>Distance in float32 ULPs.</summary>
    public static double UlpsSingle(float a, float b)
    {
        static long Ord(float f) { int bits = BitConverter.SingleToInt32Bits(f); return bits < 0 ? int.MinValue - (long)bits : bits; }
        return Math.Abs(Ord(a) - Ord(b));
    }

    private static Int128 Ordered(double d)
    {
        long bits = BitConverter.DoubleToInt64Bits(d);
        return bits < 0 ? (Int128)long.MinValue - bits : bits;
    }

    /// <summary>The multi-index of flat index <paramref name="flat"/> in C order.</summary>
    public static int[] Unravel(int flat, int[] shape)
    {
        var index = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] == 0) return index;
            index[d] = flat % shape[d];
            flat /= shape[d];
        }
        return index;
    }
}

/// <summary>Module dumps: the first module, in forward order, whose output disagrees.</summary>
public static class DumpComparer
{
    /// <summary>The <c>__metadata__</c> key that lists a dump's entries in call order.</summary>
    public const string OrderKey = "order";

    /// <summary>
    /// The first failed comparison in forward order: <paramref name="order"/> (the expected dump's comma-separated
    /// <c>"order"</c>), or the comparisons' own order when it is null. Null when every comparison passed.
    /// </summary>
    public static TensorComparison? FirstDivergence(IReadOnlyList<TensorComparison> comparisons, string? order)
    {
        var byName = new Dictionary<string, TensorComparison>(StringComparer.Ordinal);
        foreach (var c in comparisons) byName[c.Name] = c;
        var names = order is null ? comparisons.Select(c => c.Name) : order.Split(',');
        foreach (var n in names)
            if (byName.TryGetValue(n, out var c) && !c.Passed) return c;
        return comparisons.FirstOrDefault(c => !c.Passed);
    }

    /// <summary>"first divergence: layer3.2.se.gate, max rel err 4.0E-03" (or the problem, for a missing entry).</summary>
    public static string Describe(TensorComparison c) => c.Problem is not null
        ? $"first divergence: {c.Name} ({c.Problem})"
        : string.Create(CultureInfo.InvariantCulture,
            $"first divergence: {c.Name}, max rel err {c.MaxRelError:0.0E+00}, max abs err {c.MaxAbsError:0.0E+00} at [{string.Join(",", c.WorstIndex)}]");
}

