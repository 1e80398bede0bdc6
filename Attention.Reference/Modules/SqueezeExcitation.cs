using System.Numerics;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;

namespace Attention.Reference.Modules;

/// <summary>The SE gate: the paper's sigmoid, or hard-sigmoid ReLU6(v + 3)/6 (MobileNetV3, timm's EffectiveSE).</summary>
public enum SeGate
{
    /// <summary>σ(v) = 1 / (1 + exp(−v)), Eq. (act.1).</summary>
    Sigmoid,

    /// <summary>ReLU6(v + 3) / 6, Eq. (act.5); derivative 0 at exactly ±3.</summary>
    HardSigmoid,

    /// <summary>tanh(v) (the SENet paper's excitation ablation, Table 13); derivative 1 − s² from the output.</summary>
    Tanh,

    /// <summary>relu(v) (the same ablation); relu'(0) = 0.</summary>
    Relu,
}

/// <summary>The SE gate functions and their derivatives, one place for the oracle and the fast path (Eqs. (se.6), (se.9)).</summary>
public static class SeGates
{
    /// <summary>s = gate(e).</summary>
    public static T Apply<T>(SeGate gate, T e) where T : IFloatingPointIeee754<T> => gate switch
    {
        SeGate.Sigmoid => Activations.Sigmoid(e),
        SeGate.HardSigmoid => Activations.HardSigmoid(e),
        SeGate.Tanh => T.Tanh(e),
        _ => Activations.Relu(e),
    };

    /// <summary>gate'(e), from the output s where the formula uses it (sigmoid, tanh), else from e.</summary>
    public static T Grad<T>(SeGate gate, T e, T s) where T : IFloatingPointIeee754<T> => gate switch
    {
        SeGate.Sigmoid => Activations.SigmoidGradFromOutput(s),
        SeGate.HardSigmoid => Activations.HardSigmoidGrad(e),
        SeGate.Tanh => Activations.TanhGradFromOutput(s),
        _ => Activations.ReluGrad(e),
    };

    /// <summary>The case.json name of a gate.</summary>
    public static string Name(SeGate gate) => gate switch
    {
        SeGate.Sigmoid => "sigmoid",
        SeGate.HardSigmoid => "hard_sigmoid",
        SeGate.Tanh => "tanh",
        _ => "relu",
    };
}

/// <summary>The SE squeeze: global average (the paper) or global max (the paper's ablation).</summary>
public enum SePool
{
    /// <summary>Global average pooling, Eq. (se.1).</summary>
    Avg,

    /// <summary>Global max pooling, Eq. (se.2); the gradient goes to the first maximal index.</summary>
    Max,
}

/// <summary>Hyper-parameters of a Squeeze-and-Excitation module.</summary>
public sealed record SeOptions
{
    /// <summary>C, the number of channels of x.</summary>
    public int Channels { get; }

    /// <summary>The hidden width (C // r in the paper).</summary>
    public int Hidden { get; }

    /// <summary>Whether fc1 and fc2 have biases (timm, torchvision: yes; the paper's equations: no).</summary>
    public bool Bias { get; }

    /// <summary>The gate.</summary>
    public SeGate Gate { get; }

    /// <summary>The squeeze.</summary>
    public SePool Pool { get; }

    /// <summary>Creates and validates the options.</summary>
    /// <exception cref="ArgumentOutOfRangeException">channels or hidden below 1.</exception>
    public SeOptions(int channels, int hidden, bool bias = true, SeGate gate = SeGate.Sigmoid, SePool pool = SePool.Avg)
    {
        if (channels < 1) throw new ArgumentOutOfRangeException(nameof(channels), channels, "SE channels must be at least 1.");
        if (hidden < 1) throw new ArgumentOutOfRangeException(nameof(hidden), hidden, "SE hidden width must be at least 1.");
        if (!Enum.IsDefined(gate)) throw new ArgumentOutOfRangeException(nameof(gate), gate, "Unknown SE gate.");
        if (!Enum.IsDefined(pool)) throw new ArgumentOutOfRangeException(nameof(pool), pool, "Unknown SE pool.");
        Channels = channels;
        Hidden = hidden;
        Bias = bias;
        Gate = gate;
        Pool = pool;
    }

    /// <summary>The hidden width from a reduction ratio r: C // r, as the paper and the authors' models.</summary>
    /// <exception cref="ArgumentOutOfRangeException">r below 1, or C // r below 1.</exception>
    public static int HiddenFromReduction(int channels, int reduction)
    {
        if (reduction < 1) throw new ArgumentOutOfRangeException(nameof(reduction), reduction, "SE reduction must be at least 1.");
        int hidden = channels / reduction;
        if (hidden < 1)
            throw new ArgumentOutOfRangeException(nameof(reduction), reduction,
                $"SE hidden width channels // reduction = {channels} // {reduction} = {hidden} is below 1.");
        return hidden;
    }
}

/// <summary>
/// The SE parameters, weights as [out, in] (an nn.Linear's, or a 1x1 conv's [out, in, 1, 1] viewed as [out, in]).
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class SeParameters<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>fc1.weight, W1: [hidden, C].</summary>
    public DenseTensor<T> W1 { get; }

    /// <summary>fc1.bias, b1: [hidden], or null without biases.</summary>
    public DenseTensor<T>? B1 { get; }

    /// <summary>fc2.weight, W2: [C, hidden].</summary>
    public DenseTensor<T> W2 { get; }

    /// <summary>fc2.bias, b2: [C], or null without biases.</summary>
    public DenseTensor<T>? B2 { get; }

    /// <summary>Checks the shapes against <paramref name="options"/>. Weights may be [out, in] or [out, in, 1, 1].</summary>
    /// <exception cref="ShapeMismatchException">A shape disagrees with channels/hidden.</exception>
    /// <exception cref="ArgumentException">Biases given without bias, or missing with bias.</exception>
    public SeParameters(SeOptions options, DenseTensor<T> w1, DenseTensor<T>? b1, DenseTensor<T> w2, DenseTensor<T>? b2)
    {
        ArgumentNullException.ThrowIfNull(options);
        W1 = AsMatrix(w1, "fc1.weight", options.Hidden, options.Channels);
        W2 = AsMatrix(w2, "fc2.weight", options.Channels, options.Hidden);
        if (options.Bias)
        {
            if (b1 is null) throw new ArgumentException("SE with bias needs fc1.bias.", nameof(b1));
            if (b2 is null) throw new ArgumentException("SE with bias needs fc2.bias.", nameof(b2));
            ShapeUtil.Require(b1, "fc1.bias", options.Hidden);
            ShapeUtil.Require(b2, "fc2.bias", options.Channels);
            B1 = b1;
            B2 = b2;
        }
        else if (b1 is not null || b2 is not null)
        {
            throw new ArgumentException("SE without bias takes no fc1.bias / fc2.bias.", b1 is not null ? nameof(b1) : nameof(b2));
        }
    }

    /// <summary>Views a weight given as [out, in] or [out, in, 1, 1] as [out, in] (sharing its data).</summary>
    /// <exception cref="ShapeMismatchException">Any other shape.</exception>
    public static DenseTensor<T> AsMatrix(DenseTensor<T> w, string name, int outFeatures, int inFeatures)
    {
        ArgumentNullException.ThrowIfNull(w);
        if (w.HasShape([outFeatures, inFeatures])) return w;
        if (w.HasShape([outFeatures, inFeatures, 1, 1])) return w.Reshape(outFeatures, inFeatures);
        throw new ShapeMismatchException(name,
            $"{ShapeUtil.Format([outFeatures, inFeatures])} or {ShapeUtil.Format([outFeatures, inFeatures, 1, 1])}", w.ShapeArray());
    }
}

/// <summary>The forward result and every intermediate the backward needs (names as in docs/derivations/se.md).</summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class SeForwardState<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>The input x [N, C, H, W] (not copied; never modified).</summary>
    public required DenseTensor<T> X { get; init; }

    /// <summary>z, the squeeze [N, C].</summary>
    public required DenseTensor<T> Z { get; init; }

    /// <summary>a, the flat (h·W + w) argmax of each plane for the max squeeze; null for avg.</summary>
    public int[]? ArgMax { get; init; }

    /// <summary>h = W1 z + b1 [N, hidden].</summary>
    public required DenseTensor<T> H { get; init; }

    /// <summary>r = relu(h) [N, hidden].</summary>
    public required DenseTensor<T> R { get; init; }

    /// <summary>e = W2 r + b2 [N, C].</summary>
    public required DenseTensor<T> E { get; init; }

    /// <summary>s = gate(e) [N, C].</summary>
    public required DenseTensor<T> S { get; init; }

    /// <summary>y = x · s [N, C, H, W].</summary>
    public required DenseTensor<T> Y { get; init; }
}

/// <summary>Gradients of an SE module (weights as [out, in]).</summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class SeGradients<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>dx [N, C, H, W].</summary>
    public required DenseTensor<T> Dx { get; init; }

    /// <summary>dW1 [hidden, C].</summary>
    public required DenseTensor<T> DW1 { get; init; }

    /// <summary>db1 [hidden], or null without biases.</summary>
    public DenseTensor<T>? DB1 { get; init; }

    /// <summary>dW2 [C, hidden].</summary>
    public required DenseTensor<T> DW2 { get; init; }

    /// <summary>db2 [C], or null without biases.</summary>
    public DenseTensor<T>? DB2 { get; init; }
}

/// <summary>
/// Squeeze-and-Excitation (Hu et al.), the float64 oracle: y = x · gate(W2 relu(W1 squeeze(x) + b1) + b2).
/// Forward and backward side by side; every equation is derived in docs/derivations/se.md.
/// Summation orders (fixed, independent of the thread count; parallel loops only split independent outputs):
/// plane sums over (h, w) are sequential, h outer, w inner; the FC sums over the input feature are sequential in
/// increasing index with the bias added last; the batch sums of the parameter gradients are sequential in n.
/// </summary>
public static class SqueezeExcitation
{
    /// <summary>Runs the forward pass, Eqs. (se.1)–(se.7).</summary>
    /// <exception cref="ShapeMismatchException">x is not [N, C, H, W] with C = channels, or H·W = 0.</exception>
    public static SeForwardState<T> Forward<T>(SeOptions options, DenseTensor<T> x, SeParameters<T> p, TraceLog? trace = null)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(p);
        CheckInput(options, x);
        int n = x.Dim(0), c = options.Channels, hid = options.Hidden, plane = x.Dim(2) * x.Dim(3);

        // Eq. (se.1) / (se.2): the squeeze.
        DenseTensor<T> z;
        int[]? argMax = null;
        if (options.Pool == SePool.Avg) z = GlobalPool.AvgForward(x);
        else (z, argMax) = GlobalPool.MaxForward(x);
        trace?.Forward(options.Pool == SePool.Avg ? "se.1" : "se.2", "z", z);

        // Eq. (se.3): h[n, j] = Σ_c W1[j, c] z[n, c] + b1[j]  (c increasing, bias last).
        var h = Linear(z, p.W1, p.B1);
        trace?.Forward("se.3", "h", h);

        // Eq. (se.4): r = relu(h), relu(NaN) = NaN.
        var r = new DenseTensor<T>(n, hid);
        for (int i = 0; i < r.Length; i++) r.Data[i] = Activations.Relu(h.Data[i]);
        trace?.Forward("se.4", "r", r);

        // Eq. (se.5): e[n, c] = Σ_j W2[c, j] r[n, j] + b2[c]  (j increasing, bias last).
        var e = Linear(r, p.W2, p.B2);
        trace?.Forward("se.5", "e", e);

        // Eq. (se.6): s = gate(e).
        var s = new DenseTensor<T>(n, c);
        for (int i = 0; i < s.Length; i++)
            s.Data[i] = SeGates.Apply(options.Gate, e.Data[i]);
        trace?.Forward("se.6", "s", s);

        // Eq. (se.7): y[n, c, h, w] = x[n, c, h, w] · s[n, c].
        var y = x.ZerosLike();
        var xd = x.Data;
        var yd = y.Data;
        var sd = s.Data;
        Compute.For(n * c, q =>
        {
            T sc = sd[q];
            int o = q * plane;
            for (int i = 0; i < plane; i++) yd[o + i] = xd[o + i] * sc;
        });
        trace?.Forward("se.7", "y", y);

        return new SeForwardState<T> { X = x, Z = z, ArgMax = argMax, H = h, R = r, E = e, S = s, Y = y };
    }

    /// <summary>Runs the backward pass, Eqs. (se.8)–(se.18), from the upstream gradient dy = ∂L/∂y.</summary>
    /// <exception cref="ShapeMismatchException">dy does not have x's shape.</exception>
    public static SeGradients<T> Backward<T>(SeOptions options, SeParameters<T> p, SeForwardState<T> st, DenseTensor<T> dy, TraceLog? trace = null)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(st);
        ArgumentNullException.ThrowIfNull(dy);
        var x = st.X;
        ShapeUtil.Require(dy, "y.grad", x.ShapeArray());
        int n = x.Dim(0), c = options.Channels, hid = options.Hidden, plane = x.Dim(2) * x.Dim(3);
        var xd = x.Data;
        var gd = dy.Data;

        // Eq. (se.8): ds[n, c] = Σ_{h,w} dy · x  (h outer, w inner, sequential).
        var ds = new DenseTensor<T>(n, c);
        var dsd = ds.Data;
        Compute.For(n * c, q =>
        {
            T sum = T.Zero;
            int o = q * plane;
            for (int i = 0; i < plane; i++) sum += gd[o + i] * xd[o + i];
            dsd[q] = sum;
        });
        trace?.Backward("se.8", "ds", ds);

        // Eq. (se.9): de = ds · gate'(e); sigmoid' and tanh' from the output, hard-sigmoid' = ReLU6'(e + 3)/6, relu'.
        var de = new DenseTensor<T>(n, c);
        for (int i = 0; i < de.Length; i++)
            de.Data[i] = dsd[i] * SeGates.Grad(options.Gate, st.E.Data[i], st.S.Data[i]);
        trace?.Backward("se.9", "de", de);

        // Eqs. (se.10), (se.11): dW2 = deᵀ r, db2 = Σ_n de.
        var dW2 = WeightGrad(de, st.R);
        trace?.Backward("se.10", "dW2", dW2);
        DenseTensor<T>? db2 = null;
        if (options.Bias)
        {
            db2 = BiasGrad(de);
            trace?.Backward("se.11", "db2", db2);
        }

        // Eq. (se.12): dr[n, j] = Σ_c de[n, c] W2[c, j]  (c increasing).
        var dr = InputGrad(de, p.W2);
        trace?.Backward("se.12", "dr", dr);

        // Eq. (se.13): dh = dr · relu'(h), relu'(0) = 0.
        var dh = new DenseTensor<T>(n, hid);
        for (int i = 0; i < dh.Length; i++) dh.Data[i] = dr.Data[i] * Activations.ReluGrad(st.H.Data[i]);
        trace?.Backward("se.13", "dh", dh);

        // Eqs. (se.14), (se.15): dW1 = dhᵀ z, db1 = Σ_n dh.
        var dW1 = WeightGrad(dh, st.Z);
        trace?.Backward("se.14", "dW1", dW1);
        DenseTensor<T>? db1 = null;
        if (options.Bias)
        {
            db1 = BiasGrad(dh);
            trace?.Backward("se.15", "db1", db1);
        }

        // Eq. (se.16): dz[n, c] = Σ_j dh[n, j] W1[j, c]  (j increasing).
        var dz = InputGrad(dh, p.W1);
        trace?.Backward("se.16", "dz", dz);

        // Eq. (se.17) / (se.18): dx = dy · s (the scale path) + the squeeze's adjoint applied to dz.
        var dx = x.ZerosLike();
        var dxd = dx.Data;
        var sd = st.S.Data;
        Compute.For(n * c, q =>
        {
            T sc = sd[q];
            int o = q * plane;
            for (int i = 0; i < plane; i++) dxd[o + i] = gd[o + i] * sc;
        });
        if (options.Pool == SePool.Avg) GlobalPool.AvgBackwardAccumulate(dz, dx);
        else GlobalPool.MaxBackwardAccumulate(dz, st.ArgMax!, dx);
        trace?.Backward(options.Pool == SePool.Avg ? "se.17" : "se.18", "dx", dx);

        return new SeGradients<T> { Dx = dx, DW1 = dW1, DB1 = db1, DW2 = dW2, DB2 = db2 };
    }

    internal static void CheckInput<T>(SeOptions options, DenseTensor<T> x) where T : IFloatingPointIeee754<T>
    {
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        if (x.Dim(1) != options.Channels)
            throw new ShapeMismatchException("x", $"[N, {options.Channels}, H, W] (channels = {options.Channels})", x.ShapeArray());
        if (x.Dim(2) * x.Dim(3) == 0)
            throw new ShapeMismatchException("x", "[N, C, H, W] with H·W ≥ 1 (the squeeze of an empty plane is undefined)", x.ShapeArray());
    }

    /// <summary>out[n, o] = Σ_i w[o, i] a[n, i] + b[o]: i increasing, the bias added last.</summary>
    private static DenseTensor<T> Linear<T>(DenseTensor<T> a, DenseTensor<T> w, DenseTensor<T>? b) where T : IFloatingPointIeee754<T>
    {
        int n = a.Dim(0), inF = a.Dim(1), outF = w.Dim(0);
        var result = new DenseTensor<T>(n, outF);
        for (int s = 0; s < n; s++)
            for (int o = 0; o < outF; o++)
            {
                T sum = T.Zero;
                for (int i = 0; i < inF; i++) sum += w.Data[o * inF + i] * a.Data[s * inF + i];
                result.Data[s * outF + o] = b is null ? sum : sum + b.Data[o];
            }
        return result;
    }

    /// <summary>dw[o, i] = Σ_n dout[n, o] a[n, i]: n increasing.</summary>
    private static DenseTensor<T> WeightGrad<T>(DenseTensor<T> dout, DenseTensor<T> a) where T : IFloatingPointIeee754<T>
    {
        int n = a.Dim(0), inF = a.Dim(1), outF = dout.Dim(1);
        var dw = new DenseTensor<T>(outF, inF);
        for (int o = 0; o < outF; o++)
            for (int i = 0; i < inF; i++)
            {
                T sum = T.Zero;
                for (int s = 0; s < n; s++) sum += dout.Data[s * outF + o] * a.Data[s * inF + i];
                dw.Data[o * inF + i] = sum;
            }
        return dw;
    }

    /// <summary>db[o] = Σ_n dout[n, o]: n increasing.</summary>
    private static DenseTensor<T> BiasGrad<T>(DenseTensor<T> dout) where T : IFloatingPointIeee754<T>
    {
        int n = dout.Dim(0), outF = dout.Dim(1);
        var db = new DenseTensor<T>(outF);
        for (int o = 0; o < outF; o++)
        {
            T sum = T.Zero;
            for (int s = 0; s < n; s++) sum += dout.Data[s * outF + o];
            db.Data[o] = sum;
        }
        return db;
    }

    /// <summary>da[n, i] = Σ_o dout[n, o] w[o, i]: o increasing.</summary>
    private static DenseTensor<T> InputGrad<T>(DenseTensor<T> dout, DenseTensor<T> w) where T : IFloatingPointIeee754<T>
    {
        int n = dout.Dim(0), outF = w.Dim(0), inF = w.Dim(1);
        var da = new DenseTensor<T>(n, inF);
        for (int s = 0; s < n; s++)
            for (int i = 0; i < inF; i++)
            {
                T sum = T.Zero;
                for (int o = 0; o < outF; o++) sum += dout.Data[s * outF + o] * w.Data[o * inF + i];
                da.Data[s * inF + i] = sum;
            }
        return da;
    }
}
