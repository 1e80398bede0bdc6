using System.Numerics;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;

namespace Attention.Reference.Modules;

/// <summary>
/// The parameters and buffers of the authors' <c>CoordAtt(inp, oup, reduction)</c> (houqb/CoordAttention,
/// coordatt.py). The 1x1 convolution weights are held as matrices [out, in].
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class CoordinateAttentionParameters<T> where T : IFloatingPointIeee754<T>
{
    /// <summary><c>conv1.weight</c> as [mip, C].</summary>
    public required DenseTensor<T> Conv1Weight { get; init; }

    /// <summary><c>conv1.bias</c> [mip].</summary>
    public required DenseTensor<T> Conv1Bias { get; init; }

    /// <summary><c>bn1.weight</c> (γ) [mip].</summary>
    public required DenseTensor<T> BnWeight { get; init; }

    /// <summary><c>bn1.bias</c> (β) [mip].</summary>
    public required DenseTensor<T> BnBias { get; init; }

    /// <summary><c>bn1.running_mean</c> [mip].</summary>
    public required DenseTensor<T> BnRunningMean { get; init; }

    /// <summary><c>bn1.running_var</c> [mip]; every element ≥ 0.</summary>
    public required DenseTensor<T> BnRunningVar { get; init; }

    /// <summary><c>conv_h.weight</c> as [C, mip].</summary>
    public required DenseTensor<T> ConvHWeight { get; init; }

    /// <summary><c>conv_h.bias</c> [C].</summary>
    public required DenseTensor<T> ConvHBias { get; init; }

    /// <summary><c>conv_w.weight</c> as [C, mip].</summary>
    public required DenseTensor<T> ConvWWeight { get; init; }

    /// <summary><c>conv_w.bias</c> [C].</summary>
    public required DenseTensor<T> ConvWBias { get; init; }

    /// <summary>The input (and output) channel count C.</summary>
    public int Channels => Conv1Weight.Dim(1);

    /// <summary>The hidden width mip.</summary>
    public int Mip => Conv1Weight.Dim(0);

    /// <summary>Checks every shape against C = <see cref="Channels"/> and mip = <see cref="Mip"/>.</summary>
    /// <exception cref="ShapeMismatchException">A tensor has the wrong shape; the message names it.</exception>
    public void Validate()
    {
        ShapeUtil.RequireRank(Conv1Weight, "conv1.weight", 2, "mip, C");
        int c = Channels, mip = Mip;
        ShapeUtil.Require(Conv1Bias, "conv1.bias", mip);
        ShapeUtil.Require(BnWeight, "bn1.weight", mip);
        ShapeUtil.Require(BnBias, "bn1.bias", mip);
        ShapeUtil.Require(BnRunningMean, "bn1.running_mean", mip);
        ShapeUtil.Require(BnRunningVar, "bn1.running_var", mip);
        ShapeUtil.Require(ConvHWeight, "conv_h.weight", c, mip);
        ShapeUtil.Require(ConvHBias, "conv_h.bias", c);
        ShapeUtil.Require(ConvWWeight, "conv_w.weight", c, mip);
        ShapeUtil.Require(ConvWBias, "conv_w.bias", c);
    }

    /// <summary>The parameters converted to <typeparamref name="TOut"/>.</summary>
    public CoordinateAttentionParameters<TOut> Cast<TOut>() where TOut : IFloatingPointIeee754<TOut> => new()
    {
        Conv1Weight = Conv1Weight.Cast<TOut>(), Conv1Bias = Conv1Bias.Cast<TOut>(),
        BnWeight = BnWeight.Cast<TOut>(), BnBias = BnBias.Cast<TOut>(),
        BnRunningMean = BnRunningMean.Cast<TOut>(), BnRunningVar = BnRunningVar.Cast<TOut>(),
        ConvHWeight = ConvHWeight.Cast<TOut>(), ConvHBias = ConvHBias.Cast<TOut>(),
        ConvWWeight = ConvWWeight.Cast<TOut>(), ConvWBias = ConvWBias.Cast<TOut>(),
    };
}

/// <summary>The gradients of Coordinate Attention, weights as matrices [out, in].</summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class CoordinateAttentionGradients<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>∂L/∂x [N, C, H, W].</summary>
    public required DenseTensor<T> X { get; init; }
    /// <summary>∂L/∂conv1.weight [mip, C].</summary>
    public required DenseTensor<T> Conv1Weight { get; init; }
    /// <summary>∂L/∂conv1.bias [mip].</summary>
    public required DenseTensor<T> Conv1Bias { get; init; }
    /// <summary>∂L/∂bn1.weight [mip].</summary>
    public required DenseTensor<T> BnWeight { get; init; }
    /// <summary>∂L/∂bn1.bias [mip].</summary>
    public required DenseTensor<T> BnBias { get; init; }
    /// <summary>∂L/∂conv_h.weight [C, mip].</summary>
    public required DenseTensor<T> ConvHWeight { get; init; }
    /// <summary>∂L/∂conv_h.bias [C].</summary>
    public required DenseTensor<T> ConvHBias { get; init; }
    /// <summary>∂L/∂conv_w.weight [C, mip].</summary>
    public required DenseTensor<T> ConvWWeight { get; init; }
    /// <summary>∂L/∂conv_w.bias [C].</summary>
    public required DenseTensor<T> ConvWBias { get; init; }
}

/// <summary>What the forward pass keeps for the backward pass, and its outputs.</summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class CoordinateAttentionForward<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>The output y [N, C, H, W], Eq. (ca.10).</summary>
    public required DenseTensor<T> Y { get; init; }
    /// <summary>bn1.running_mean after the update (training mode), else the given one.</summary>
    public required DenseTensor<T> RunningMean { get; init; }
    /// <summary>bn1.running_var after the update (training mode), else the given one.</summary>
    public required DenseTensor<T> RunningVar { get; init; }

    internal DenseTensor<T> X { get; init; } = null!;
    internal CoordinateAttentionParameters<T> P { get; init; } = null!;
    internal bool Training { get; init; }
    internal double Eps { get; init; }
    internal DenseTensor<T> YCat { get; init; } = null!;   // [N, C, L]
    internal DenseTensor<T> F { get; init; } = null!;      // [N, mip, L, 1]
    internal DenseTensor<T> Bn { get; init; } = null!;     // [N, mip, L]
    internal DenseTensor<T> Act { get; init; } = null!;    // [N, mip, L]
    internal DenseTensor<T> AH { get; init; } = null!;     // [N, C, H]
    internal DenseTensor<T> AW { get; init; } = null!;     // [N, C, W]
    internal BatchNormTrainResult<T>? BnTrain { get; init; }
}

/// <summary>
/// Coordinate Attention (Hou, Zhou, Feng, CVPR 2021), the authors' <c>CoordAtt</c> exactly: forward and backward side
/// by side, generic over the element type; float64 is the oracle (docs/derivations/ca.md).
/// <para>
/// Summation orders (fixed, independent of the thread count; parallel loops run over independent outputs only):
/// pooling sums w increasing (x_h) and h increasing (x_w); 1x1 convolutions sum over the input channel increasing,
/// then add the bias; weight and bias gradients sum n outer, position inner; the gate gradients sum w increasing
/// (∂a_h) and h increasing (∂a_w); BatchNorm as in <see cref="BatchNorm2d"/>.
/// </para>
/// </summary>
public static class CoordinateAttention
{
    /// <summary>mip = max(8, C // reduction), the authors' hidden width.</summary>
    public static int DefaultMip(int channels, int reduction = 32) => Math.Max(8, channels / reduction);

    /// <summary>The forward pass, Eq. (ca.1)–(ca.10).</summary>
    /// <param name="x">The input [N, C, H, W].</param>
    /// <param name="p">The parameters (C must equal the input's channel count).</param>
    /// <param name="training">BatchNorm in training mode (batch statistics, running-statistics update) or eval mode.</param>
    /// <param name="eps">BatchNorm's ε.</param>
    /// <param name="momentum">BatchNorm's momentum (training mode).</param>
    /// <param name="trace">Where to record the named intermediates, or null.</param>
    public static CoordinateAttentionForward<T> Forward<T>(DenseTensor<T> x, CoordinateAttentionParameters<T> p,
        bool training, double eps = 1e-5, double momentum = 0.1, TraceLog? trace = null)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(p);
        p.Validate();
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3), mip = p.Mip, l = h + w;
        if (c != p.Channels) throw new ShapeMismatchException("x", $"[N, {p.Channels}, H, W] (conv1.weight has {p.Channels} input channels)", x.ShapeArray());
        if (h < 1 || w < 1) throw new ShapeMismatchException("x", "H ≥ 1 and W ≥ 1", x.ShapeArray());
        T invW = T.One / T.CreateChecked(w), invH = T.One / T.CreateChecked(h);
        T fw = T.CreateChecked(w), fh = T.CreateChecked(h);
        T[] xd = x.Data;

        // Eq. (ca.1)–(ca.3): x_h = mean over w, x_w = mean over h, y_cat = [x_h ; x_w] along the position axis.
        var yCat = new DenseTensor<T>(n, c, l);
        T[] yc = yCat.Data;
        Compute.For(n * c, nc =>
        {
            int xo = nc * h * w, yo = nc * l;
            for (int hh = 0; hh < h; hh++)
            {
                T s = T.Zero;
                for (int ww = 0; ww < w; ww++) s += xd[xo + hh * w + ww];
                yc[yo + hh] = s / fw;
            }
            for (int ww = 0; ww < w; ww++)
            {
                T s = T.Zero;
                for (int hh = 0; hh < h; hh++) s += xd[xo + hh * w + ww];
                yc[yo + h + ww] = s / fh;
            }
        });
        if (trace is not null)
        {
            var xh = new DenseTensor<T>(n, c, h);
            var xw = new DenseTensor<T>(n, c, w);
            for (int nc = 0; nc < n * c; nc++)
            {
                Array.Copy(yc, nc * l, xh.Data, nc * h, h);
                Array.Copy(yc, nc * l + h, xw.Data, nc * w, w);
            }
            trace.Forward("ca.1", "x_h", xh);
            trace.Forward("ca.2", "x_w", xw);
            trace.Forward("ca.3", "y_cat", yCat);
        }

        // Eq. (ca.4): f = conv1(y_cat), a 1x1 convolution C → mip on [N, C, L, 1].
        var f = Conv1x1(yCat, p.Conv1Weight, p.Conv1Bias);
        trace?.Forward("ca.4", "f", f);

        // Eq. (ca.5): BatchNorm2d over mip channels of [N, mip, L, 1].
        var f4 = f.Reshape(n, mip, l, 1);
        DenseTensor<T> bn, runningMean, runningVar;
        BatchNormTrainResult<T>? bnTrain = null;
        if (training)
        {
            bnTrain = BatchNorm2d.ForwardTrain(f4, p.BnWeight, p.BnBias, p.BnRunningMean, p.BnRunningVar, eps, momentum, "bn1");
            bn = bnTrain.Y.Reshape(n, mip, l);
            runningMean = bnTrain.RunningMean;
            runningVar = bnTrain.RunningVar;
            trace?.Forward("ca.5", "mean", bnTrain.Mean); // the batch statistics of Eq. (ca.5): (bn.5)
            trace?.Forward("ca.5", "var", bnTrain.Var);   // and (bn.6)
        }
        else
        {
            bn = BatchNorm2d.ForwardEval(f4, p.BnWeight, p.BnBias, p.BnRunningMean, p.BnRunningVar, eps, "bn1").Reshape(n, mip, l);
            runningMean = p.BnRunningMean.Clone();
            runningVar = p.BnRunningVar.Clone();
        }
        trace?.Forward("ca.5", "bn", bn);

        // Eq. (ca.6): act = h_swish(bn) = bn · ReLU6(bn + 3) / 6 (the authors' composite).
        var act = bn.ZerosLike();
        for (int i = 0; i < act.Length; i++) act.Data[i] = Activations.HSwish(bn.Data[i]);
        trace?.Forward("ca.6", "act", act);

        // Eq. (ca.7)–(ca.9): split, a_h = σ(conv_h(f_h)), a_w = σ(conv_w(f_w)).
        var aH = GateConv(act, 0, h, p.ConvHWeight, p.ConvHBias);
        var aW = GateConv(act, h, w, p.ConvWWeight, p.ConvWBias);
        trace?.Forward("ca.8", "a_h", aH);
        trace?.Forward("ca.9", "a_w", aW);

        // Eq. (ca.10): y = (x · a_w) · a_h, in that order (identity * a_w * a_h).
        var y = x.ZerosLike();
        T[] yd = y.Data, ah = aH.Data, aw = aW.Data;
        Compute.For(n * c, nc =>
        {
            int o = nc * h * w;
            for (int hh = 0; hh < h; hh++)
            {
                T a = ah[nc * h + hh];
                for (int ww = 0; ww < w; ww++) yd[o + hh * w + ww] = xd[o + hh * w + ww] * aw[nc * w + ww] * a;
            }
        });
        trace?.Forward("ca.10", "y", y);

        return new CoordinateAttentionForward<T>
        {
            Y = y, RunningMean = runningMean, RunningVar = runningVar,
            X = x, P = p, Training = training, Eps = eps,
            YCat = yCat, F = f4, Bn = bn, Act = act, AH = aH, AW = aW, BnTrain = bnTrain,
        };
    }

    /// <summary>The backward pass, Eq. (ca.11)–(ca.22).</summary>
    /// <param name="fwd">The forward pass's result.</param>
    /// <param name="dy">∂L/∂y [N, C, H, W].</param>
    /// <param name="trace">Where to record the named intermediates, or null.</param>
    public static CoordinateAttentionGradients<T> Backward<T>(CoordinateAttentionForward<T> fwd, DenseTensor<T> dy, TraceLog? trace = null)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(fwd);
        ArgumentNullException.ThrowIfNull(dy);
        var x = fwd.X;
        var p = fwd.P;
        ShapeUtil.Require(dy, "y.grad", x.ShapeArray());
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3), mip = p.Mip, l = h + w;
        T[] xd = x.Data, gd = dy.Data, ah = fwd.AH.Data, aw = fwd.AW.Data;

        // Eq. (ca.11)–(ca.12): gate gradients. da_h = Σ_w g·(x·a_w); da_w = Σ_h (g·a_h)·x.
        // Eq. (ca.13): the product path dx_prod = (g·a_h)·a_w, written into dx first.
        var daH = new DenseTensor<T>(n, c, h);
        var daW = new DenseTensor<T>(n, c, w);
        var dx = x.ZerosLike();
        T[] dah = daH.Data, daw = daW.Data, dxd = dx.Data;
        Compute.For(n * c, nc =>
        {
            int o = nc * h * w;
            for (int hh = 0; hh < h; hh++)
            {
                T a = ah[nc * h + hh], s = T.Zero;
                for (int ww = 0; ww < w; ww++)
                {
                    int i = o + hh * w + ww;
                    s += gd[i] * (xd[i] * aw[nc * w + ww]);
                    dxd[i] = gd[i] * a * aw[nc * w + ww];
                }
                dah[nc * h + hh] = s;
            }
            for (int ww = 0; ww < w; ww++)
            {
                T s = T.Zero;
                for (int hh = 0; hh < h; hh++)
                {
                    int i = o + hh * w + ww;
                    s += gd[i] * ah[nc * h + hh] * xd[i];
                }
                daw[nc * w + ww] = s;
            }
        });
        trace?.Backward("ca.11", "da_h", daH);
        trace?.Backward("ca.12", "da_w", daW);
        trace?.Backward("ca.13", "dx_prod", dx);

        // Eq. (ca.14): through the sigmoids, dz = da · (1 − a) · a.
        var dzH = SigmoidBackward(daH, fwd.AH);
        var dzW = SigmoidBackward(daW, fwd.AW);
        trace?.Backward("ca.14", "dz_h", dzH);
        trace?.Backward("ca.14", "dz_w", dzW);

        // Eq. (ca.15)–(ca.16): conv_h / conv_w backward; dact = [df_h ; df_w].
        var dact = new DenseTensor<T>(n, mip, l);
        var (dWh, dbh) = GateConvBackward(dzH, fwd.Act, 0, p.ConvHWeight, dact);
        var (dWw, dbw) = GateConvBackward(dzW, fwd.Act, h, p.ConvWWeight, dact);
        trace?.Backward("ca.17", "dact", dact);

        // Eq. (ca.18): through h_swish, dbn = dact · h_swish'(bn).
        var dbn = new DenseTensor<T>(n, mip, l, 1);
        for (int i = 0; i < dbn.Length; i++) dbn.Data[i] = dact.Data[i] * Activations.HSwishGrad(fwd.Bn.Data[i]);
        trace?.Backward("ca.18", "dbn", dbn);

        // Eq. (ca.19): BatchNorm backward (training: through the batch statistics; eval: running statistics).
        var bnGrads = fwd.Training
            ? BatchNorm2d.BackwardTrain(dbn, fwd.F, p.BnWeight, fwd.BnTrain!, true, "bn1")
            : BatchNorm2d.BackwardEval(dbn, fwd.F, p.BnWeight, p.BnRunningMean, p.BnRunningVar, fwd.Eps, true, "bn1");
        var df = bnGrads.X.Reshape(n, mip, l);
        trace?.Backward("ca.19", "df", df);

        // Eq. (ca.20)–(ca.21): conv1 backward.
        var (dW1, db1) = WeightGrad(df, fwd.YCat);
        var dyCat = InputGrad(df, p.Conv1Weight);
        trace?.Backward("ca.21", "dy_cat", dyCat);

        // Eq. (ca.22): dx = dx_prod + dy_cat_h / W + dy_cat_w / H (each pooled value is a mean).
        T fw = T.CreateChecked(w), fh = T.CreateChecked(h);
        T[] dyc = dyCat.Data;
        Compute.For(n * c, nc =>
        {
            int o = nc * h * w;
            for (int hh = 0; hh < h; hh++)
            {
                T gh = dyc[nc * l + hh] / fw;
                for (int ww = 0; ww < w; ww++)
                    dxd[o + hh * w + ww] = dxd[o + hh * w + ww] + gh + dyc[nc * l + h + ww] / fh;
            }
        });
        trace?.Backward("ca.22", "dx", dx);

        return new CoordinateAttentionGradients<T>
        {
            X = dx, Conv1Weight = dW1, Conv1Bias = db1, BnWeight = bnGrads.Weight!, BnBias = bnGrads.Bias!,
            ConvHWeight = dWh, ConvHBias = dbh, ConvWWeight = dWw, ConvWBias = dbw,
        };
    }

    /// <summary>Eq. (ca.4): out[n, o, l] = Σ_i W[o, i]·in[n, i, l] (i increasing) + b[o].</summary>
    private static DenseTensor<T> Conv1x1<T>(DenseTensor<T> input, DenseTensor<T> weight, DenseTensor<T> bias)
        where T : IFloatingPointIeee754<T>
    {
        int n = input.Dim(0), ci = input.Dim(1), l = input.Dim(2), co = weight.Dim(0);
        var output = new DenseTensor<T>(n, co, l);
        T[] ind = input.Data, wd = weight.Data, od = output.Data;
        Compute.For(n * co, no =>
        {
            int nn = no / co, o = no % co;
            for (int j = 0; j < l; j++)
            {
                T s = T.Zero;
                for (int i = 0; i < ci; i++) s += wd[o * ci + i] * ind[(nn * ci + i) * l + j];
                od[no * l + j] = s + bias.Data[o];
            }
        });
        return output;
    }

    /// <summary>Eq. (ca.8)/(ca.9): a[n, o, j] = σ(Σ_m W[o, m]·act[n, m, start + j] + b[o]), j &lt; count.</summary>
    private static DenseTensor<T> GateConv<T>(DenseTensor<T> act, int start, int count, DenseTensor<T> weight, DenseTensor<T> bias)
        where T : IFloatingPointIeee754<T>
    {
        int n = act.Dim(0), mip = act.Dim(1), l = act.Dim(2), co = weight.Dim(0);
        var a = new DenseTensor<T>(n, co, count);
        T[] ad = act.Data, wd = weight.Data, od = a.Data;
        Compute.For(n * co, no =>
        {
            int nn = no / co, o = no % co;
            for (int j = 0; j < count; j++)
            {
                T s = T.Zero;
                for (int m = 0; m < mip; m++) s += wd[o * mip + m] * ad[(nn * mip + m) * l + start + j];
                od[no * count + j] = Activations.Sigmoid(s + bias.Data[o]);
            }
        });
        return a;
    }

    /// <summary>Eq. (ca.14): dz = da·(1 − a)·a (ATen's sigmoid_backward: g·((1 − s)·s)).</summary>
    private static DenseTensor<T> SigmoidBackward<T>(DenseTensor<T> da, DenseTensor<T> a) where T : IFloatingPointIeee754<T>
    {
        var dz = da.ZerosLike();
        for (int i = 0; i < dz.Length; i++) dz.Data[i] = da.Data[i] * Activations.SigmoidGradFromOutput(a.Data[i]);
        return dz;
    }

    /// <summary>
    /// Eq. (ca.15)–(ca.16): for a gate conv on positions [start, start + count) of act: dW[o, m] = Σ_n Σ_j dz[n, o, j]·act[n, m, start + j],
    /// db[o] = Σ_n Σ_j dz[n, o, j] (n outer, j inner); dact[n, m, start + j] = Σ_o W[o, m]·dz[n, o, j] (o increasing).
    /// </summary>
    private static (DenseTensor<T> dW, DenseTensor<T> db) GateConvBackward<T>(DenseTensor<T> dz, DenseTensor<T> act, int start,
        DenseTensor<T> weight, DenseTensor<T> dact) where T : IFloatingPointIeee754<T>
    {
        int n = dz.Dim(0), co = dz.Dim(1), count = dz.Dim(2), mip = act.Dim(1), l = act.Dim(2);
        var dW = new DenseTensor<T>(co, mip);
        var db = new DenseTensor<T>(co);
        T[] dzd = dz.Data, ad = act.Data, wd = weight.Data, dad = dact.Data;
        Compute.For(co, o =>
        {
            T sb = T.Zero;
            for (int nn = 0; nn < n; nn++)
                for (int j = 0; j < count; j++) sb += dzd[(nn * co + o) * count + j];
            db.Data[o] = sb;
            for (int m = 0; m < mip; m++)
            {
                T s = T.Zero;
                for (int nn = 0; nn < n; nn++)
                    for (int j = 0; j < count; j++) s += dzd[(nn * co + o) * count + j] * ad[(nn * mip + m) * l + start + j];
                dW.Data[o * mip + m] = s;
            }
        });
        Compute.For(n * mip, nm =>
        {
            int nn = nm / mip, m = nm % mip;
            for (int j = 0; j < count; j++)
            {
                T s = T.Zero;
                for (int o = 0; o < co; o++) s += wd[o * mip + m] * dzd[(nn * co + o) * count + j];
                dad[nm * l + start + j] = s;
            }
        });
        return (dW, db);
    }

    /// <summary>Eq. (ca.20): dW1[m, c] = Σ_n Σ_l df[n, m, l]·y_cat[n, c, l], db1[m] = Σ_n Σ_l df[n, m, l] (n outer, l inner).</summary>
    private static (DenseTensor<T> dW, DenseTensor<T> db) WeightGrad<T>(DenseTensor<T> df, DenseTensor<T> input)
        where T : IFloatingPointIeee754<T>
    {
        int n = df.Dim(0), co = df.Dim(1), l = df.Dim(2), ci = input.Dim(1);
        var dW = new DenseTensor<T>(co, ci);
        var db = new DenseTensor<T>(co);
        T[] dd = df.Data, id = input.Data;
        Compute.For(co, o =>
        {
            T sb = T.Zero;
            for (int nn = 0; nn < n; nn++)
                for (int j = 0; j < l; j++) sb += dd[(nn * co + o) * l + j];
            db.Data[o] = sb;
            for (int i = 0; i < ci; i++)
            {
                T s = T.Zero;
                for (int nn = 0; nn < n; nn++)
                    for (int j = 0; j < l; j++) s += dd[(nn * co + o) * l + j] * id[(nn * ci + i) * l + j];
                dW.Data[o * ci + i] = s;
            }
        });
        return (dW, db);
    }

    /// <summary>Eq. (ca.21): dy_cat[n, c, l] = Σ_m W1[m, c]·df[n, m, l] (m increasing).</summary>
    private static DenseTensor<T> InputGrad<T>(DenseTensor<T> df, DenseTensor<T> weight) where T : IFloatingPointIeee754<T>
    {
        int n = df.Dim(0), co = df.Dim(1), l = df.Dim(2), ci = weight.Dim(1);
        var dIn = new DenseTensor<T>(n, ci, l);
        T[] dd = df.Data, wd = weight.Data, od = dIn.Data;
        Compute.For(n * ci, ni =>
        {
            int nn = ni / ci, i = ni % ci;
            for (int j = 0; j < l; j++)
            {
                T s = T.Zero;
                for (int o = 0; o < co; o++) s += wd[o * ci + i] * dd[(nn * co + o) * l + j];
                od[ni * l + j] = s;
            }
        });
        return dIn;
    }
}
