using System.Globalization;

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
/// Element-wise comparison under |a − e| ≤ atol + rtol·|e|. Defaults by the coarser stored dtype of the two sides
/// (<see cref="DefaultRTol"/>: F64 1e-10, F32 1e-5, F16 1e-2, BF16 5e-2, ULPs counted in that dtype's units);
/// atol = rtol × max|e| of that tensor, so an element that cancels to near zero is judged against the tensor's scale.
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

    /// <summary>
    /// The coarser of two stored types, whose units the comparison counts in: BF16 over F16 over F32 over F64 (an
    /// integer type counts as F64: its values are exact in double up to 2^53).
    /// </summary>
    public static StoredDType Coarser(StoredDType a, StoredDType b) => Rank(a) >= Rank(b) ? Norm(a) : Norm(b);

    private static StoredDType Norm(StoredDType t) => t is StoredDType.F16 or StoredDType.BF16 or StoredDType.F32 ? t : StoredDType.F64;

    private static int Rank(StoredDType t) => Norm(t) switch
    {
        StoredDType.BF16 => 3,
        StoredDType.F16 => 2,
        StoredDType.F32 => 1,
        _ => 0,
    };

    /// <summary>
    /// The default relative tolerance, by the coarser stored type: F64 1e-10 (only the order of summation differs),
    /// F32 1e-5 (~84 units of its ε = 2^-23), F16 1e-2 (~10 units of 2^-10), BF16 5e-2 (~6 units of 2^-7).
    /// </summary>
    public static double DefaultRTol(StoredDType expected, StoredDType actual) => Coarser(expected, actual) switch
    {
        StoredDType.BF16 => 5e-2,
        StoredDType.F16 => 1e-2,
        StoredDType.F32 => 1e-5,
        _ => 1e-10,
    };

    /// <summary>The machine epsilon of a stored type (the noise floor's unit).</summary>
    public static double Epsilon(StoredDType dtype) => Norm(dtype) switch
    {
        StoredDType.BF16 => Math.Pow(2, -7),
        StoredDType.F16 => Math.Pow(2, -10),
        StoredDType.F32 => Math.Pow(2, -23),
        _ => Math.Pow(2, -52),
    };

    /// <summary>Compares two stored tensors.</summary>
    /// <param name="expected">The expected tensor.</param>
    /// <param name="actual">The actual tensor.</param>
    /// <param name="rtol">Relative tolerance (default by dtype).</param>
    /// <param name="atol">Absolute tolerance (default rtol × max|e|, with the noise floor).</param>
    /// <param name="fileScale">S, the largest |e| of the expected file, for the noise floor; null for this tensor's own.</param>
    public static TensorComparison Compare(StoredTensor expected, StoredTensor actual, double? rtol = null, double? atol = null, double? fileScale = null)
    {
        double r = rtol ?? DefaultRTol(expected.DType, actual.DType);
        var unit = Coarser(expected.DType, actual.DType);
        if (atol is null)
        {
            double epsilon = Epsilon(unit);
            double floor = NoiseFloorUlps * epsilon * (fileScale ?? MaxAbsFinite(expected.Values));
            atol = Math.Max(r * MaxAbsFinite(expected.Values), floor);
        }
        if (!expected.Shape.AsSpan().SequenceEqual(actual.Shape))
            return new TensorComparison
            {
                Name = expected.Name, RTol = r,
                Problem = $"shape {ShapeUtil.Format(actual.Shape)}, expected {ShapeUtil.Format(expected.Shape)}",
            };
        return Compare(expected.Name, expected.Values, actual.Values, expected.Shape, r, atol, unit);
    }

    /// <summary>Compares two arrays of the same shape; ULPs are counted in <paramref name="unit"/>'s spacing.</summary>
    public static TensorComparison Compare(string name, double[] expected, double[] actual, int[] shape, double rtol, double? atol = null,
        StoredDType unit = StoredDType.F64)
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
            double ratio = Ratio(e, a, rtol, a0);
            if (double.IsFinite(e) && double.IsFinite(a))
            {
                double diff = Math.Abs(a - e);
                maxAbs = Math.Max(maxAbs, diff);
                if (e != 0) maxRel = Math.Max(maxRel, diff / Math.Abs(e));
                maxUlps = Math.Max(maxUlps, Ulps(e, a, unit));
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

    /// <summary>
    /// One element's error ratio |a − e| / (atol + rtol·|e|): 0 when equal (NaN against NaN, equal infinities), +∞
    /// when a NaN or an infinity disagrees or the bound is 0. An element passes at ratio ≤ 1.
    /// </summary>
    public static double Ratio(double e, double a, double rtol, double atol)
    {
        if (double.IsNaN(e) || double.IsNaN(a)) return double.IsNaN(e) && double.IsNaN(a) ? 0 : double.PositiveInfinity;
        if (double.IsInfinity(e) || double.IsInfinity(a)) return e == a ? 0 : double.PositiveInfinity;
        double diff = Math.Abs(a - e), bound = atol + rtol * Math.Abs(e);
        return diff == 0 ? 0 : bound == 0 ? double.PositiveInfinity : diff / bound;
    }

    private static double MaxAbsFinite(double[] values)
    {
        double scale = 0;
        foreach (double v in values) if (double.IsFinite(v)) scale = Math.Max(scale, Math.Abs(v));
        return scale;
    }

    /// <summary>Distance in float64 ULPs (0 for equal values, +0 and −0 equal).</summary>
    public static double UlpsDouble(double a, double b) => Math.Abs((double)(Ordered(a) - Ordered(b)));

    /// <summary>The distance between e and a in units in the last place of <paramref name="unit"/> (both rounded to it).</summary>
    public static double Ulps(double e, double a, StoredDType unit) => Norm(unit) switch
    {
        StoredDType.F32 => UlpsSingle((float)e, (float)a),
        StoredDType.F16 => Ulps16(BitConverter.HalfToInt16Bits((Half)e), BitConverter.HalfToInt16Bits((Half)a)),
        StoredDType.BF16 => Ulps16(BFloat16Bits((float)e), BFloat16Bits((float)a)),
        _ => UlpsDouble(e, a),
    };

    private static double Ulps16(short a, short b)
    {
        static int Ord(short bits) => bits < 0 ? short.MinValue - bits : bits;
        return Math.Abs(Ord(a) - Ord(b));
    }

    /// <summary>bfloat16's bit pattern of <paramref name="f"/>, rounded to nearest even (NaN kept NaN).</summary>
    public static short BFloat16Bits(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return unchecked((short)((bits >> 16) | 0x40));
        uint rounded = bits + 0x7FFF + ((bits >> 16) & 1);
        return unchecked((short)(rounded >> 16));
    }

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


/// <summary>One element of a comparison: where, what was expected, what came, and how far over the tolerance.</summary>
/// <param name="Index">The multi-index.</param>
/// <param name="Expected">e.</param>
/// <param name="Actual">a.</param>
/// <param name="Ratio">|a − e| / (atol + rtol·|e|); +∞ where a NaN or infinity disagrees.</param>
public sealed record ElementError(int[] Index, double Expected, double Actual, double Ratio);

/// <summary>An NCHW tensor's errors by channel.</summary>
/// <param name="Channel">c.</param>
/// <param name="WorstRatio">The channel's largest error ratio.</param>
/// <param name="Violations">How many of its elements are over the tolerance.</param>
/// <param name="Elements">How many elements it has.</param>
public sealed record ChannelError(int Channel, double WorstRatio, long Violations, long Elements);

/// <summary>Element-level detail of a comparison, for people looking for where a backend goes wrong.</summary>
public static class ComparisonDetails
{
    /// <summary>The <paramref name="count"/> elements with the largest error ratios, worst first (under the comparison's tolerances).</summary>
    public static List<ElementError> Worst(StoredTensor expected, StoredTensor actual, TensorComparison c, int count)
    {
        if (c.Problem is not null || count <= 0) return [];
        var ratios = Ratios(expected.Values, actual.Values, c.RTol, c.ATol);
        return Enumerable.Range(0, ratios.Length)
            .OrderByDescending(i => ratios[i]).ThenBy(i => i).Take(count)
            .Select(i => new ElementError(TensorComparer.Unravel(i, expected.Shape), expected.Values[i], actual.Values[i], ratios[i]))
            .ToList();
    }

    /// <summary>Per-channel errors of a rank-4 (NCHW) tensor; empty for other ranks.</summary>
    public static List<ChannelError> PerChannel(StoredTensor expected, StoredTensor actual, TensorComparison c)
    {
        if (c.Problem is not null || expected.Shape.Length != 4) return [];
        int n = expected.Shape[0], ch = expected.Shape[1], plane = expected.Shape[2] * expected.Shape[3];
        var ratios = Ratios(expected.Values, actual.Values, c.RTol, c.ATol);
        var result = new List<ChannelError>(ch);
        for (int k = 0; k < ch; k++)
        {
            double worst = 0;
            long violations = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < plane; j++)
                {
                    double r = ratios[(i * ch + k) * plane + j];
                    worst = Math.Max(worst, r);
                    if (r > 1) violations++;
                }
            result.Add(new ChannelError(k, worst, violations, (long)n * plane));
        }
        return result;
    }

    private static double[] Ratios(double[] e, double[] a, double rtol, double atol)
    {
        var r = new double[e.Length];
        for (int i = 0; i < e.Length; i++) r[i] = TensorComparer.Ratio(e[i], a[i], rtol, atol);
        return r;
    }
}
