using System.Numerics;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;

namespace Attention.Reference.Modules;

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
/// Gated Channel Transformation (Yang et al., CVPR 2020), exactly as the authors' <c>PyTorch/GCT.py</c> computes it,
/// forward and backward side by side (docs/derivations/gct.md). Parameters <see cref="Alpha"/>, <see cref="Gamma"/>,
/// <see cref="Beta"/> are <c>[1, C, 1, 1]</c> as in the state_dict. This is the generic oracle; the float32 fast path
/// is <see cref="GatedChannelTransformationFast"/>.
/// </summary>
/// <remarks>
/// Summation order (fixed, independent of the thread count): the plane sums S and ∂gate run sequentially over h
/// (outer) then w (inner) in increasing index order; the channel sums (the mean inside D, and ∂D) run sequentially over
/// c in increasing order; the parameter gradients are summed sequentially over n in increasing order after the
/// per-sample work. Samples run in parallel (each writes only its own outputs).
/// </remarks>
/// <typeparam name="T">double for the oracle; float works too (used to check the fast path's arithmetic).</typeparam>
public sealed class GatedChannelTransformation<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>The authors' default ε.</summary>
    public const double DefaultEpsilon = 1e-5;

    /// <summary>The number of channels C.</summary>
    public int Channels { get; }

    /// <summary>l2 or l1 embedding.</summary>
    public GctMode Mode { get; }

    /// <summary>ε, added inside the square roots (l2) or to the mean (l1), as in the authors' code.</summary>
    public double Epsilon { get; }

    /// <summary>l1 only: the input is known non-negative, so |x| is not taken (the flag has no effect in l2).</summary>
    public bool AfterRelu { get; }

    /// <summary>α, <c>[1, C, 1, 1]</c>: scales the embedding.</summary>
    public DenseTensor<T> Alpha { get; }

    /// <summary>γ, <c>[1, C, 1, 1]</c>: the gating weight.</summary>
    public DenseTensor<T> Gamma { get; }

    /// <summary>β, <c>[1, C, 1, 1]</c>: the gating bias.</summary>
    public DenseTensor<T> Beta { get; }

    /// <summary>A new module with the authors' initialisation: α = 1, γ = 0, β = 0 (so it starts as the identity).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Negative <paramref name="channels"/>, or ε negative or not finite.</exception>
    public GatedChannelTransformation(int channels, double epsilon = DefaultEpsilon, GctMode mode = GctMode.L2, bool afterRelu = false)
        : this(Filled(channels, T.One), Filled(channels, T.Zero), Filled(channels, T.Zero), epsilon, mode, afterRelu)
    {
    }

    /// <summary>A module with the given parameters (not copied), each <c>[1, C, 1, 1]</c>.</summary>
    /// <exception cref="ShapeMismatchException">A parameter is not <c>[1, C, 1, 1]</c> with the same C.</exception>
    /// <exception cref="ArgumentOutOfRangeException">ε negative or not finite.</exception>
    public GatedChannelTransformation(DenseTensor<T> alpha, DenseTensor<T> gamma, DenseTensor<T> beta,
        double epsilon = DefaultEpsilon, GctMode mode = GctMode.L2, bool afterRelu = false)
    {
        ArgumentNullException.ThrowIfNull(alpha);
        ArgumentNullException.ThrowIfNull(gamma);
        ArgumentNullException.ThrowIfNull(beta);
        ShapeUtil.RequireRank(alpha, "alpha", 4, "[1, C, 1, 1]");
        int c = alpha.Dim(1);
        ShapeUtil.Require(alpha, "alpha", 1, c, 1, 1);
        ShapeUtil.Require(gamma, "gamma", 1, c, 1, 1);
        ShapeUtil.Require(beta, "beta", 1, c, 1, 1);
        if (!double.IsFinite(epsilon) || epsilon < 0)
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, $"GCT epsilon must be a finite number >= 0, got {epsilon}.");
        if (mode is not (GctMode.L2 or GctMode.L1))
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown GCT mode.");
        Channels = c;
        Epsilon = epsilon;
        Mode = mode;
        AfterRelu = afterRelu;
        Alpha = alpha;
        Gamma = gamma;
        Beta = beta;
    }

    private static DenseTensor<T> Filled(int channels, T value)
    {
        if (channels < 0)
            throw new ArgumentOutOfRangeException(nameof(channels), channels, $"GCT channels must be >= 0, got {channels}.");
        var t = new DenseTensor<T>(1, channels, 1, 1);
        Array.Fill(t.Data, value);
        return t;
    }

    /// <summary>Checks that <paramref name="x"/> is <c>[N, C, H, W]</c> with this module's C.</summary>
    /// <exception cref="ShapeMismatchException">It is not.</exception>
    public void CheckInput(DenseTensor<T> x, string name = "x")
    {
        ArgumentNullException.ThrowIfNull(x);
        ShapeUtil.RequireRank(x, name, 4, "[N, C, H, W]");
        if (x.Dim(1) != Channels)
            throw new ShapeMismatchException(name, $"[N, {Channels}, H, W]", x.ShapeArray());
    }

    /// <summary>
    /// The forward pass, Eqs. (gct.1)–(gct.9): returns y and the per-channel intermediates the backward pass needs.
    /// <paramref name="x"/> is not modified.
    /// </summary>
    public GctForward<T> Forward(DenseTensor<T> x, TraceLog? trace = null)
    {
        CheckInput(x);
        int n = x.Dim(0), c = Channels, plane = x.Dim(2) * x.Dim(3);
        var fw = new GctForward<T>(this, x);
        T eps = T.CreateChecked(Epsilon);
        T cT = T.CreateChecked(c);
        T[] xd = x.Data, yd = fw.Y.Data;
        T[] sumS = fw.S.Data, r = fw.R.Data, s = fw.EmbeddingS.Data, d = fw.D.Data, k = fw.K.Data, u = fw.U.Data, t = fw.Tanh.Data, g = fw.Gate.Data;
        T[] alpha = Alpha.Data, gamma = Gamma.Data, beta = Beta.Data;
        GctMode mode = Mode;
        bool afterRelu = AfterRelu;

        Compute.For(n, ni =>
        {
            for (int ci = 0; ci < c; ci++)
            {
                int nc = ni * c + ci;
                int baseIndex = nc * plane;
                // Sequential sum, h outer, w inner (the plane is contiguous, so this is increasing index order).
                T acc = T.Zero;
                if (mode == GctMode.L2)
                {
                    for (int i = 0; i < plane; i++) { T v = xd[baseIndex + i]; acc += v * v; } // Eq. (gct.1): x.pow(2).sum((2,3))
                }
                else if (!afterRelu)
                {
                    for (int i = 0; i < plane; i++) acc += T.Abs(xd[baseIndex + i]); // Eq. (gct.4): abs(x).sum((2,3))
                }
                else
                {
                    for (int i = 0; i < plane; i++) acc += xd[baseIndex + i]; // Eq. (gct.4), after_relu: x.sum((2,3))
                }
                sumS[nc] = acc;
                // Eq. (gct.2): r = (S + ε).pow(0.5) (ATen's pow with exponent 0.5 is sqrt); s = r · α.
                // Eq. (gct.5): r = S; s = S · α.
                r[nc] = mode == GctMode.L2 ? T.Sqrt(acc + eps) : acc;
                s[nc] = r[nc] * alpha[ci];
            }

            // Eq. (gct.3): D = (mean_c s² + ε)^½; Eq. (gct.6): D = mean_c |s| + ε. Sequential over c; mean = sum / C.
            T m = T.Zero;
            for (int ci = 0; ci < c; ci++)
            {
                T sc = s[ni * c + ci];
                m += mode == GctMode.L2 ? sc * sc : T.Abs(sc);
            }
            m /= cT;
            T dn = mode == GctMode.L2 ? T.Sqrt(m + eps) : m + eps;
            d[ni] = dn;

            for (int ci = 0; ci < c; ci++)
            {
                int nc = ni * c + ci;
                k[nc] = gamma[ci] / dn;               // Eq. (gct.7): k = γ / D (the authors' "norm")
                u[nc] = s[nc] * k[nc] + beta[ci];     // Eq. (gct.7): u = s · k + β
                t[nc] = T.Tanh(u[nc]);                // Eq. (gct.8)
                g[nc] = T.One + t[nc];                // Eq. (gct.8): gate = 1 + tanh u, literally
                T gc = g[nc];
                int baseIndex = nc * plane;
                for (int i = 0; i < plane; i++) yd[baseIndex + i] = xd[baseIndex + i] * gc; // Eq. (gct.9)
            }
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
    /// The backward pass, Eqs. (gct.10)–(gct.20): x.grad through the gate and through the embedding and normalisation
    /// paths, and the α, γ, β gradients (each <c>[1, C, 1, 1]</c>). <paramref name="dy"/> is not modified.
    /// </summary>
    /// <exception cref="ShapeMismatchException"><paramref name="dy"/> is not shaped as y.</exception>
    public GctGradients<T> Backward(GctForward<T> saved, DenseTensor<T> dy, TraceLog? trace = null)
    {
        ArgumentNullException.ThrowIfNull(saved);
        ArgumentNullException.ThrowIfNull(dy);
        if (!ReferenceEquals(saved.Module, this))
            throw new ArgumentException("The saved forward state belongs to another GCT module.", nameof(saved));
        var x = saved.X;
        ShapeUtil.Require(dy, "y.grad", x.ShapeArray());
        int n = x.Dim(0), c = Channels, plane = x.Dim(2) * x.Dim(3);
        T cT = T.CreateChecked(c);
        T two = T.CreateTruncating(2);
        GctMode mode = Mode;
        bool afterRelu = AfterRelu;

        var dGate = new DenseTensor<T>(n, c);
        var du = new DenseTensor<T>(n, c);
        var dk = new DenseTensor<T>(n, c);
        var dD = new DenseTensor<T>(n, 1);
        var ds = new DenseTensor<T>(n, c);
        var dS = new DenseTensor<T>(n, c);
        var dx = x.ZerosLike();
        T[] xd = x.Data, dyd = dy.Data, dxd = dx.Data;
        T[] r = saved.R.Data, s = saved.EmbeddingS.Data, d = saved.D.Data, k = saved.K.Data, t = saved.Tanh.Data, g = saved.Gate.Data;
        T[] alpha = Alpha.Data, gamma = Gamma.Data;
        T[] dGateD = dGate.Data, duD = du.Data, dkD = dk.Data, dDD = dD.Data, dsD = ds.Data, dSD = dS.Data;

        Compute.For(n, ni =>
        {
            T dn = d[ni];
            T acc = T.Zero;
            for (int ci = 0; ci < c; ci++)
            {
                int nc = ni * c + ci;
                int baseIndex = nc * plane;
                T p = T.Zero;
                for (int i = 0; i < plane; i++) p += dyd[baseIndex + i] * xd[baseIndex + i]; // Eq. (gct.10), h outer, w inner
                dGateD[nc] = p;
                duD[nc] = p * Activations.TanhGradFromOutput(t[nc]);   // Eq. (gct.11): ∂u = ∂gate · (1 − t²)
                dkD[nc] = duD[nc] * s[nc];                              // Eq. (gct.13): ∂k = ∂u · s
                acc += dkD[nc] * gamma[ci];                             // Eq. (gct.14), sequential over c
            }
            T dDn = -acc / (dn * dn);                                   // Eq. (gct.14): ∂D = −Σ_c ∂k γ / D²
            dDD[ni] = dDn;

            for (int ci = 0; ci < c; ci++)
            {
                int nc = ni * c + ci;
                T dsc = mode == GctMode.L2
                    ? duD[nc] * k[nc] + s[nc] * (dDn / (cT * dn))                        // Eq. (gct.15)
                    : duD[nc] * k[nc] + Activations.AbsGrad(s[nc]) * (dDn / cT);        // Eq. (gct.16), abs'(0) = 0
                dsD[nc] = dsc;
                T gc = g[nc];
                int baseIndex = nc * plane;
                if (mode == GctMode.L2)
                {
                    T dSc = dsc * alpha[ci] / (two * r[nc]);            // Eq. (gct.17): ∂S = ∂s · α / (2r)
                    dSD[nc] = dSc;
                    T coef = two * dSc;
                    for (int i = 0; i < plane; i++)                    // Eq. (gct.19): ∂x = ∂y · gate + 2x · ∂S
                        dxd[baseIndex + i] = dyd[baseIndex + i] * gc + xd[baseIndex + i] * coef;
                }
                else
                {
                    T dSc = dsc * alpha[ci];                            // Eq. (gct.18): ∂S = ∂s · α
                    dSD[nc] = dSc;
                    if (afterRelu)
                        for (int i = 0; i < plane; i++)                // Eq. (gct.20), after_relu: ∂x = ∂y · gate + ∂S
                            dxd[baseIndex + i] = dyd[baseIndex + i] * gc + dSc;
                    else
                        for (int i = 0; i < plane; i++)                // Eq. (gct.20): ∂x = ∂y · gate + sgn(x) · ∂S
                            dxd[baseIndex + i] = dyd[baseIndex + i] * gc + Activations.AbsGrad(xd[baseIndex + i]) * dSc;
                }
            }
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
}

/// <summary>
/// The result of <see cref="GatedChannelTransformation{T}.Forward"/>: y and the per-(n, c) intermediates, each
/// <c>[N, C]</c> except <see cref="D"/> (<c>[N, 1]</c>), named as in docs/derivations/gct.md.
/// </summary>
public sealed class GctForward<T> where T : IFloatingPointIeee754<T>
{
    internal GctForward(GatedChannelTransformation<T> module, DenseTensor<T> x)
    {
        Module = module;
        X = x;
        int n = x.Dim(0), c = module.Channels;
        Y = x.ZerosLike();
        S = new DenseTensor<T>(n, c);
        R = new DenseTensor<T>(n, c);
        EmbeddingS = new DenseTensor<T>(n, c);
        D = new DenseTensor<T>(n, 1);
        K = new DenseTensor<T>(n, c);
        U = new DenseTensor<T>(n, c);
        Tanh = new DenseTensor<T>(n, c);
        Gate = new DenseTensor<T>(n, c);
    }

    /// <summary>The module that ran.</summary>
    public GatedChannelTransformation<T> Module { get; }

    /// <summary>The input (not copied; the backward pass reads it).</summary>
    public DenseTensor<T> X { get; }

    /// <summary>The output y = x · gate, Eq. (gct.9).</summary>
    public DenseTensor<T> Y { get; }

    /// <summary>S, the per-channel plane sum (of x², |x| or x), Eqs. (gct.1), (gct.4).</summary>
    public DenseTensor<T> S { get; }

    /// <summary>r: (S + ε)^½ in l2, S in l1 (the embedding before α).</summary>
    public DenseTensor<T> R { get; }

    /// <summary>s = r · α, the embedding, Eqs. (gct.2), (gct.5).</summary>
    public DenseTensor<T> EmbeddingS { get; }

    /// <summary>D, the per-sample normaliser, <c>[N, 1]</c>, Eqs. (gct.3), (gct.6).</summary>
    public DenseTensor<T> D { get; }

    /// <summary>k = γ / D (the authors' <c>norm</c>), Eq. (gct.7).</summary>
    public DenseTensor<T> K { get; }

    /// <summary>u = s · k + β, Eq. (gct.7).</summary>
    public DenseTensor<T> U { get; }

    /// <summary>t = tanh u, Eq. (gct.8).</summary>
    public DenseTensor<T> Tanh { get; }

    /// <summary>gate = 1 + t, in [0, 2], Eq. (gct.8).</summary>
    public DenseTensor<T> Gate { get; }
}

/// <summary>The gradients of GCT: x.grad (shaped as x) and α, γ, β gradients (each <c>[1, C, 1, 1]</c>).</summary>
/// <param name="X">∂L/∂x, Eqs. (gct.19), (gct.20).</param>
/// <param name="Alpha">∂L/∂α, Eqs. (gct.17), (gct.18).</param>
/// <param name="Gamma">∂L/∂γ, Eq. (gct.13).</param>
/// <param name="Beta">∂L/∂β, Eq. (gct.12).</param>
public sealed record GctGradients<T>(DenseTensor<T> X, DenseTensor<T> Alpha, DenseTensor<T> Gamma, DenseTensor<T> Beta)
    where T : IFloatingPointIeee754<T>;
