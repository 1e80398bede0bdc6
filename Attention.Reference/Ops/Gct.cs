using Attention.Reference.Kernels;

namespace Attention.Reference.Ops;

/// <summary>How GCT embeds a channel: the authors' <c>mode</c> argument.</summary>
public enum GctMode
{
    /// <summary><c>'l2'</c>: s = α·(Σ x² + ε)^½, D = (mean s² + ε)^½ (Eqs. (gct.1)–(gct.3)).</summary>
    L2,

    /// <summary><c>'l1'</c>: s = α·Σ |x| (or Σ x after a ReLU), D = mean |s| + ε (Eqs. (gct.4)–(gct.6)).</summary>
    L1,
}

/// <summary>Parsing and naming of <see cref="GctMode"/> as the authors spell it.</summary>
public static class GctModes
{
    /// <summary>The spellings the authors' code accepts.</summary>
    public static IReadOnlyList<string> Allowed { get; } = ["l2", "l1"];

    /// <summary>Parses <c>"l2"</c> or <c>"l1"</c> (exactly, as the authors compare strings).</summary>
    /// <exception cref="ArgumentException">Any other mode (the authors' code prints "Unknown mode!" and exits).</exception>
    public static GctMode Parse(string mode) => mode switch
    {
        "l2" => GctMode.L2,
        "l1" => GctMode.L1,
        _ => throw new ArgumentException(
            $"Unknown GCT mode '{mode}'; allowed modes: {string.Join(", ", Allowed.Select(m => $"'{m}'"))}.", nameof(mode)),
    };

    /// <summary>The authors' spelling of <paramref name="mode"/>.</summary>
    public static string Name(GctMode mode) => mode == GctMode.L2 ? "l2" : "l1";
}

/// <summary>
/// Gated Channel Transformation (Yang et al., CVPR 2020), exactly as the authors' <c>PyTorch/GCT.py</c> computes it:
/// the spec op, forward and backward side by side (docs/derivations/gct.md). α, γ, β are <c>[1, C, 1, 1]</c> as in the
/// state_dict; <see cref="Layers.GctLayer{T}"/> owns them and calls this.
/// </summary>
/// <remarks>
/// Summation order (fixed, independent of the thread count and the vector width): the plane sums S and ∂gate are one
/// sequential chain per plane over h (outer) then w (inner) in increasing index order (<see cref="PlaneReduce"/> runs
/// independent planes side by side with the plain loop's bits); the channel sums (the mean inside D, and ∂D) run
/// sequentially over c in increasing order; the parameter gradients are summed sequentially over n in increasing order.
/// The elementwise passes (y, ∂x) round each operation as the formulas are written, lane by lane. float64 and float32
/// run the same code; the layer's fast setting sums the planes in <see cref="SumOrder.Blocked"/> order instead.
/// </remarks>
public static class Gct
{
    /// <summary>The authors' default ε.</summary>
    public const double DefaultEpsilon = 1e-5;

    /// <summary>
    /// The forward pass, Eqs. (gct.1)–(gct.9): y (into <paramref name="y"/> when given) and the per-channel
    /// intermediates the backward pass needs. <paramref name="x"/> is not modified.
    /// </summary>
    /// <exception cref="ShapeMismatchException">x is not [N, C, H, W] with the parameters' C, or a parameter not [1, C, 1, 1].</exception>
    /// <exception cref="ArgumentOutOfRangeException">ε negative or not finite, or an unknown mode.</exception>
    public static GctForward<T> Forward<T>(DenseTensor<T> x, DenseTensor<T> alpha, DenseTensor<T> gamma, DenseTensor<T> beta,
        double epsilon = DefaultEpsilon, GctMode mode = GctMode.L2, bool afterRelu = false, DenseTensor<T>? y = null, TraceLog? trace = null)
        where T : IFloatingPointIeee754<T> =>
        Forward(x, alpha, gamma, beta, epsilon, mode, afterRelu, y, trace, null, SumOrder.Sequential);

    /// <summary>
    /// The forward into the state of an earlier call (<paramref name="reuse"/>, overwritten; null: a new state), so that
    /// an inference plan's forward allocates nothing.
    /// </summary>
    internal static GctForward<T> Forward<T>(DenseTensor<T> x, DenseTensor<T> alpha, DenseTensor<T> gamma, DenseTensor<T> beta,
        double epsilon, GctMode mode, bool afterRelu, DenseTensor<T>? y, TraceLog? trace, GctForward<T>? reuse, SumOrder order)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(x);
        GctForward<T> fw;
        if (reuse is null) fw = new GctForward<T>(x, alpha, gamma, beta, epsilon, mode, afterRelu, y);
        else
        {
            fw = reuse;
            fw.Reset(x, alpha, gamma, beta, epsilon, mode, afterRelu, y);
        }
        fw.Order = order;
        int n = x.Dim(0), c = fw.Channels, plane = x.Dim(2) * x.Dim(3);
        T eps = T.CreateChecked(epsilon);
        T cT = T.CreateChecked(c);
        T[] sumS = fw.S.Data, r = fw.R.Data, s = fw.EmbeddingS.Data, d = fw.D.Data, k = fw.K.Data, u = fw.U.Data, t = fw.Tanh.Data, g = fw.Gate.Data;
        T[] a = alpha.Data, gm = gamma.Data, b = beta.Data;

        // Sample by sample (each sample's plane sums, its channel math, then its scale pass, while its planes are in cache).
        Compute.PerSample(n, new ForwardSample<T>
        {
            X = x.Data, Y = fw.Y.Data, SumS = sumS, R = r, S = s, D = d, K = k, U = u, Tanh = t, Gate = g, Alpha = a, Gamma = gm, Beta = b,
            C = c, Plane = plane, Eps = eps, CT = cT, Mode = mode, AfterRelu = afterRelu, Order = order,
        });

        if (trace is not null)
        {
            trace.Forward(mode == GctMode.L2 ? "gct.1" : "gct.4", "S", fw.S);
            trace.Forward(mode == GctMode.L2 ? "gct.2" : "gct.5", "s", fw.EmbeddingS);
            trace.Forward(mode == GctMode.L2 ? "gct.3" : "gct.6", "D", fw.D);
            trace.Forward("gct.7", "u", fw.U);
            trace.Forward("gct.8", "gate", fw.Gate);
            trace.Forward("gct.9", "y", fw.Y);
        }
        return fw;
    }

    /// <summary>
    /// The backward pass, Eqs. (gct.10)–(gct.20): x.grad (into <paramref name="dx"/> when given) through the gate and
    /// through the embedding and normalisation paths, and the α, γ, β gradients (each <c>[1, C, 1, 1]</c>).
    /// <paramref name="dy"/> is not modified.
    /// </summary>
    /// <exception cref="ShapeMismatchException"><paramref name="dy"/> is not shaped as y.</exception>
    public static GctGradients<T> Backward<T>(GctForward<T> saved, DenseTensor<T> dy, DenseTensor<T>? dx = null, TraceLog? trace = null)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(saved);
        ArgumentNullException.ThrowIfNull(dy);
        var x = saved.X;
        ShapeUtil.Require(dy, "y.grad", x.ShapeArray());
        if (dx is null) dx = new DenseTensor<T>(GC.AllocateUninitializedArray<T>(x.Length), x.ShapeArray());
        else ShapeUtil.Require(dx, "x.grad", x.ShapeArray());
        int n = x.Dim(0), c = saved.Channels, plane = x.Dim(2) * x.Dim(3);
        T cT = T.CreateChecked(c);
        T two = T.CreateTruncating(2);
        GctMode mode = saved.Mode;

        var dGate = new DenseTensor<T>(n, c);
        var du = new DenseTensor<T>(n, c);
        var dk = new DenseTensor<T>(n, c);
        var dD = new DenseTensor<T>(n, 1);
        var ds = new DenseTensor<T>(n, c);
        var dS = new DenseTensor<T>(n, c);
        var coef = new T[n * c];
        T[] r = saved.R.Data, s = saved.EmbeddingS.Data, d = saved.D.Data, k = saved.K.Data, t = saved.Tanh.Data;
        T[] alpha = saved.Alpha, gamma = saved.Gamma;
        T[] dGateD = dGate.Data, duD = du.Data, dkD = dk.Data, dDD = dD.Data, dsD = ds.Data, dSD = dS.Data;

        var term = mode == GctMode.L2 ? InputTerm.Linear : saved.AfterRelu ? InputTerm.Constant : InputTerm.Sign;
        T[] xd = x.Data, dyd = dy.Data, dxd = dx.Data, gate = saved.Gate.Data;
        // Sample by sample, as the forward: its ∂gate sums, its channel math, then its ∂x pass while its planes are in cache.
        Compute.PerSample(n, ni =>
        {
            // Eq. (gct.10): ∂gate = Σ_{h,w} ∂y · x, h outer, w inner.
            PlaneReduce.Sums<ProductTerm<T>, T>(dyd, xd, ni * c, c, plane, dGateD, saved.Order);
            T dn = d[ni];
            T acc = T.Zero;
            for (int ci = 0; ci < c; ci++)
            {
                int nc = ni * c + ci;
                duD[nc] = dGateD[nc] * Activations.TanhGradFromOutput(t[nc]);   // Eq. (gct.11): ∂u = ∂gate · (1 − t²)
                dkD[nc] = duD[nc] * s[nc];                                      // Eq. (gct.13): ∂k = ∂u · s
                acc += dkD[nc] * gamma[ci];                                     // Eq. (gct.14), sequential over c
            }
            T dDn = -acc / (dn * dn);                                           // Eq. (gct.14): ∂D = −Σ_c ∂k γ / D²
            dDD[ni] = dDn;
            for (int ci = 0; ci < c; ci++)
            {
                int nc = ni * c + ci;
                T dsc = mode == GctMode.L2
                    ? duD[nc] * k[nc] + s[nc] * (dDn / (cT * dn))                // Eq. (gct.15)
                    : duD[nc] * k[nc] + Activations.AbsGrad(s[nc]) * (dDn / cT); // Eq. (gct.16), abs'(0) = 0
                dsD[nc] = dsc;
                if (mode == GctMode.L2)
                {
                    dSD[nc] = dsc * alpha[ci] / (two * r[nc]);                  // Eq. (gct.17): ∂S = ∂s · α / (2r)
                    coef[nc] = two * dSD[nc];
                }
                else dSD[nc] = dsc * alpha[ci];                                 // Eq. (gct.18): ∂S = ∂s · α
            }
            // Eq. (gct.19): ∂x = ∂y · gate + x · 2∂S; Eq. (gct.20): ∂x = ∂y · gate + sgn(x) · ∂S (after_relu: + ∂S).
            Compute.ForWork(c, new InputGradient<T>
            {
                Dy = dyd, X = xd, Dx = dxd, Gate = gate, Coef = term == InputTerm.Linear ? coef : dSD, Plane = plane, Term = term,
                First = ni * c,
            }, (long)c * plane);
        });

        // Parameter gradients: sequential over n in increasing order, after the per-sample work.
        var dAlpha = new DenseTensor<T>(1, c, 1, 1);
        var dGamma = new DenseTensor<T>(1, c, 1, 1);
        var dBeta = new DenseTensor<T>(1, c, 1, 1);
        for (int ci = 0; ci < c; ci++)
        {
            T a = T.Zero, gm = T.Zero, b = T.Zero;
            for (int ni = 0; ni < n; ni++)
            {
                int nc = ni * c + ci;
                b += duD[nc];                 // Eq. (gct.12): ∂β = Σ_n ∂u
                gm += dkD[nc] / d[ni];        // Eq. (gct.13): ∂γ = Σ_n ∂k / D
                a += dsD[nc] * r[nc];         // Eq. (gct.17)/(gct.18): ∂α = Σ_n ∂s · r
            }
            dAlpha.Data[ci] = a;
            dGamma.Data[ci] = gm;
            dBeta.Data[ci] = b;
        }

        if (trace is not null)
        {
            trace.Backward("gct.10", "dgate", dGate);
            trace.Backward("gct.11", "du", du);
            trace.Backward("gct.12", "beta.grad", dBeta);
            trace.Backward("gct.13", "dk", dk);
            trace.Backward("gct.13", "gamma.grad", dGamma);
            trace.Backward("gct.14", "dD", dD);
            trace.Backward(mode == GctMode.L2 ? "gct.15" : "gct.16", "ds", ds);
            trace.Backward(mode == GctMode.L2 ? "gct.17" : "gct.18", "alpha.grad", dAlpha);
            trace.Backward(mode == GctMode.L2 ? "gct.17" : "gct.18", "dS", dS);
            trace.Backward(mode == GctMode.L2 ? "gct.19" : "gct.20", "x.grad", dx);
        }
        return new GctGradients<T>(dx, dAlpha, dGamma, dBeta);
    }

    /// <summary>One sample of the forward, Eqs. (gct.1)–(gct.9) (a struct body: a plan's forward allocates nothing).</summary>
    private struct ForwardSample<T> : IForBody where T : IFloatingPointIeee754<T>
    {
        public T[] X, Y, SumS, R, S, D, K, U, Tanh, Gate, Alpha, Gamma, Beta;
        public int C, Plane;
        public T Eps, CT;
        public GctMode Mode;
        public bool AfterRelu;
        public SumOrder Order;

        public readonly void Invoke(int ni)
        {
            // Eq. (gct.1): S = x.pow(2).sum((2, 3)); Eq. (gct.4): S = abs(x).sum((2, 3)), or x.sum((2, 3)) after a ReLU.
            if (Mode == GctMode.L2) PlaneReduce.Sums<SquareTerm<T>, T>(X, X, ni * C, C, Plane, SumS, Order);
            else if (!AfterRelu) PlaneReduce.Sums<AbsTerm<T>, T>(X, X, ni * C, C, Plane, SumS, Order);
            else PlaneReduce.Sums<ValueTerm<T>, T>(X, X, ni * C, C, Plane, SumS, Order);
            for (int ci = 0; ci < C; ci++)
            {
                int nc = ni * C + ci;
                // Eq. (gct.2): r = (S + ε).pow(0.5) (ATen's pow with exponent 0.5 is sqrt); s = r · α.
                // Eq. (gct.5): r = S; s = S · α.
                R[nc] = Mode == GctMode.L2 ? T.Sqrt(SumS[nc] + Eps) : SumS[nc];
                S[nc] = R[nc] * Alpha[ci];
            }
            // Eq. (gct.3): D = (mean_c s² + ε)^½; Eq. (gct.6): D = mean_c |s| + ε. Sequential over c; mean = sum / C.
            T m = T.Zero;
            for (int ci = 0; ci < C; ci++)
            {
                T sc = S[ni * C + ci];
                m += Mode == GctMode.L2 ? sc * sc : T.Abs(sc);
            }
            m /= CT;
            T dn = Mode == GctMode.L2 ? T.Sqrt(m + Eps) : m + Eps;
            D[ni] = dn;
            for (int ci = 0; ci < C; ci++)
            {
                int nc = ni * C + ci;
                K[nc] = Gamma[ci] / dn;               // Eq. (gct.7): k = γ / D (the authors' "norm")
                U[nc] = S[nc] * K[nc] + Beta[ci];     // Eq. (gct.7): u = s · k + β
                Tanh[nc] = T.Tanh(U[nc]);             // Eq. (gct.8)
                Gate[nc] = T.One + Tanh[nc];             // Eq. (gct.8): gate = 1 + tanh u, literally
            }
            ChannelScale.Forward(X, Gate, Y, ni * C, C, Plane); // Eq. (gct.9): y = x · gate
        }
    }

    private enum InputTerm { Linear, Sign, Constant }

    /// <summary>
    /// One plane of Eqs. (gct.19)/(gct.20): ∂x = ∂y·gate + (x·c | sgn(x)·c | c), each product and the sum rounded as
    /// written (never fused), lane by lane with <see cref="Vector{T}"/>: the scalar formula's bits.
    /// </summary>
    private struct InputGradient<T> : IForBody where T : IFloatingPointIeee754<T>
    {
        public T[] Dy, X, Dx, Gate, Coef;
        public int Plane, First;
        public InputTerm Term;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int unit)
        {
            int p = First + unit;
            int o = p * Plane, i = 0, end = Plane;
            T g = Gate[p], c = Coef[p];
            var dy = Dy.AsSpan(o, Plane);
            var x = X.AsSpan(o, Plane);
            var dx = Dx.AsSpan(o, Plane);
            if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
            {
                ref T dyr = ref MemoryMarshal.GetReference(dy);
                ref T xr = ref MemoryMarshal.GetReference(x);
                ref T dxr = ref MemoryMarshal.GetReference(dx);
                var vg = new Vector<T>(g);
                var vc = new Vector<T>(c);
                int w = Vector<T>.Count;
                // One loop per term (the choice hoisted out of the element loop).
                if (Term == InputTerm.Linear)
                    for (; i + w <= end; i += w)
                        (Vector.LoadUnsafe(ref dyr, (nuint)i) * vg + Vector.LoadUnsafe(ref xr, (nuint)i) * vc).StoreUnsafe(ref dxr, (nuint)i);
                else if (Term == InputTerm.Constant)
                    for (; i + w <= end; i += w)
                        (Vector.LoadUnsafe(ref dyr, (nuint)i) * vg + vc).StoreUnsafe(ref dxr, (nuint)i);
                else
                    for (; i + w <= end; i += w)
                    {
                        var xv = Vector.LoadUnsafe(ref xr, (nuint)i);
                        var sign = Vector.ConditionalSelect(Vector.GreaterThan(xv, Vector<T>.Zero), Vector<T>.One,
                            Vector.ConditionalSelect(Vector.LessThan(xv, Vector<T>.Zero), -Vector<T>.One, Vector<T>.Zero));
                        (Vector.LoadUnsafe(ref dyr, (nuint)i) * vg + sign * vc).StoreUnsafe(ref dxr, (nuint)i);
                    }
            }
            for (; i < end; i++)
                dx[i] = Term switch
                {
                    InputTerm.Linear => dy[i] * g + x[i] * c,
                    InputTerm.Sign => dy[i] * g + Activations.AbsGrad(x[i]) * c,
                    _ => dy[i] * g + c,
                };
        }
    }
}

/// <summary>
/// The result of <c>Gct.Forward</c>: y, the parameters and hyper-parameters it ran with, and the per-(n, c)
/// intermediates, each <c>[N, C]</c> except <see cref="D"/> (<c>[N, 1]</c>), named as in docs/derivations/gct.md.
/// </summary>
public sealed class GctForward<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>The order of the plane sums (the forward's S and the backward's ∂gate): the oracle's chain or the fast one.</summary>
    internal SumOrder Order { get; set; }

    internal GctForward(DenseTensor<T> x, DenseTensor<T> alpha, DenseTensor<T> gamma, DenseTensor<T> beta, double epsilon, GctMode mode,
        bool afterRelu, DenseTensor<T>? y)
    {
        Bind(x, alpha, gamma, beta, epsilon, mode, afterRelu, y);
        Allocate(x.Dim(0), Channels);
    }

    /// <summary>Points this state at a new call, keeping its [N, C] buffers when the shapes are the same (an inference plan's).</summary>
    internal void Reset(DenseTensor<T> x, DenseTensor<T> alpha, DenseTensor<T> gamma, DenseTensor<T> beta, double epsilon, GctMode mode,
        bool afterRelu, DenseTensor<T>? y)
    {
        Bind(x, alpha, gamma, beta, epsilon, mode, afterRelu, y);
        if (!S.HasShape([x.Dim(0), Channels])) Allocate(x.Dim(0), Channels);
    }

    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(Alpha), nameof(Gamma), nameof(X), nameof(Y))]
    private void Bind(DenseTensor<T> x, DenseTensor<T> alpha, DenseTensor<T> gamma, DenseTensor<T> beta, double epsilon, GctMode mode,
        bool afterRelu, DenseTensor<T>? y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(alpha);
        ArgumentNullException.ThrowIfNull(gamma);
        ArgumentNullException.ThrowIfNull(beta);
        if (alpha.Rank != 4) ShapeUtil.RequireRank(alpha, "alpha", 4, "[1, C, 1, 1]");
        int c = alpha.Dim(1);
        if (!alpha.HasShape([1, c, 1, 1])) ShapeUtil.Require(alpha, "alpha", 1, c, 1, 1);
        if (!gamma.HasShape([1, c, 1, 1])) ShapeUtil.Require(gamma, "gamma", 1, c, 1, 1);
        if (!beta.HasShape([1, c, 1, 1])) ShapeUtil.Require(beta, "beta", 1, c, 1, 1);
        if (!double.IsFinite(epsilon) || epsilon < 0)
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, $"GCT epsilon must be a finite number >= 0, got {epsilon}.");
        if (mode is not (GctMode.L2 or GctMode.L1)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown GCT mode.");
        if (x.Rank != 4) ShapeUtil.RequireRank(x, "x", 4, "[N, C, H, W]");
        if (x.Dim(1) != c) throw new ShapeMismatchException("x", $"[N, {c}, H, W]", x.ShapeArray());
        if (y is not null && !y.HasShape(x.Shape)) ShapeUtil.Require(y, "y", x.ShapeArray());
        Channels = c;
        Epsilon = epsilon;
        Mode = mode;
        AfterRelu = afterRelu;
        Alpha = alpha.Data;
        Gamma = gamma.Data;
        X = x;
        Y = y ?? new DenseTensor<T>(GC.AllocateUninitializedArray<T>(x.Length), x.ShapeArray());
    }

    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(S), nameof(R), nameof(EmbeddingS), nameof(D), nameof(K), nameof(U), nameof(Tanh),
        nameof(Gate))]
    private void Allocate(int n, int c)
    {
        S = new DenseTensor<T>(n, c);
        R = new DenseTensor<T>(n, c);
        EmbeddingS = new DenseTensor<T>(n, c);
        D = new DenseTensor<T>(n, 1);
        K = new DenseTensor<T>(n, c);
        U = new DenseTensor<T>(n, c);
        Tanh = new DenseTensor<T>(n, c);
        Gate = new DenseTensor<T>(n, c);
    }

    /// <summary>C.</summary>
    public int Channels { get; private set; }

    /// <summary>ε.</summary>
    public double Epsilon { get; private set; }

    /// <summary>l2 or l1.</summary>
    public GctMode Mode { get; private set; }

    /// <summary>after_relu (l1 only: the input is known non-negative, so |x| is not taken).</summary>
    public bool AfterRelu { get; private set; }

    internal T[] Alpha { get; private set; }

    internal T[] Gamma { get; private set; }

    /// <summary>The input (not copied; the backward pass reads it).</summary>
    public DenseTensor<T> X { get; private set; }

    /// <summary>The output y = x · gate, Eq. (gct.9).</summary>
    public DenseTensor<T> Y { get; private set; }

    /// <summary>S, the per-channel plane sum (of x², |x| or x), Eqs. (gct.1), (gct.4).</summary>
    public DenseTensor<T> S { get; private set; }

    /// <summary>r: (S + ε)^½ in l2, S in l1 (the embedding before α).</summary>
    public DenseTensor<T> R { get; private set; }

    /// <summary>s = r · α, the embedding, Eqs. (gct.2), (gct.5).</summary>
    public DenseTensor<T> EmbeddingS { get; private set; }

    /// <summary>D, the per-sample normaliser, <c>[N, 1]</c>, Eqs. (gct.3), (gct.6).</summary>
    public DenseTensor<T> D { get; private set; }

    /// <summary>k = γ / D (the authors' <c>norm</c>), Eq. (gct.7).</summary>
    public DenseTensor<T> K { get; private set; }

    /// <summary>u = s · k + β, Eq. (gct.7).</summary>
    public DenseTensor<T> U { get; private set; }

    /// <summary>t = tanh u, Eq. (gct.8).</summary>
    public DenseTensor<T> Tanh { get; private set; }

    /// <summary>gate = 1 + t, in [0, 2], Eq. (gct.8).</summary>
    public DenseTensor<T> Gate { get; private set; }
}

/// <summary>The gradients of GCT: x.grad (shaped as x) and α, γ, β gradients (each <c>[1, C, 1, 1]</c>).</summary>
/// <param name="X">∂L/∂x, Eqs. (gct.19), (gct.20).</param>
/// <param name="Alpha">∂L/∂α, Eqs. (gct.17), (gct.18).</param>
/// <param name="Gamma">∂L/∂γ, Eq. (gct.13).</param>
/// <param name="Beta">∂L/∂β, Eq. (gct.12).</param>
public sealed record GctGradients<T>(DenseTensor<T> X, DenseTensor<T> Alpha, DenseTensor<T> Gamma, DenseTensor<T> Beta)
    where T : IFloatingPointIeee754<T>;
