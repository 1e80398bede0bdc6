using System.Numerics;
using Attention.Reference.Modules;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;

namespace Attention.Reference.Blocks;

/// <summary>Where the SE module sits in the bottleneck block (the paper's Fig. 5).</summary>
public enum SePlacement
{
    /// <summary>SE on the residual branch, before the sum: relu(SE(F(x)) + shortcut(x)).</summary>
    Standard,

    /// <summary>SE-PRE, before the residual unit: relu(F(SE(x)) + shortcut(x)).</summary>
    Pre,

    /// <summary>SE-POST, after the sum and its ReLU: SE(relu(F(x) + shortcut(x))).</summary>
    Post,

    /// <summary>SE-Identity, on the identity branch: relu(F(x) + SE(shortcut(x))).</summary>
    Identity,
}

/// <summary>Hyper-parameters of an SE-ResNet bottleneck block.</summary>
/// <param name="Inplanes">Input channels.</param>
/// <param name="Planes">Bottleneck width (conv1/conv2 output channels).</param>
/// <param name="Stride">Stride of the block (on conv2, timm's ResNet v1.5; on conv1 when <paramref name="StrideIn1x1"/>).</param>
/// <param name="Expansion">Output channels = planes · expansion (4 in ResNet-50).</param>
/// <param name="Placement">Where the SE module sits.</param>
/// <param name="Se">The SE module's options; its channels must be inplanes for <see cref="SePlacement.Pre"/>, else planes · expansion.</param>
/// <param name="Eps">BatchNorm ε (eval mode).</param>
/// <param name="StrideIn1x1">Put the stride on conv1 (the original Caffe SE-ResNet, timm's legacy senet.py) instead of conv2.</param>
public sealed record SeResNetBlockOptions(int Inplanes, int Planes, int Stride, int Expansion, SePlacement Placement, SeOptions Se,
    double Eps = 1e-5, bool StrideIn1x1 = false)
{
    /// <summary>planes · expansion.</summary>
    public int OutPlanes => Planes * Expansion;

    /// <summary>Whether the shortcut is a 1x1 conv + BN (stride ≠ 1 or inplanes ≠ planes · expansion), as timm.</summary>
    public bool HasDownsample => Stride != 1 || Inplanes != OutPlanes;

    /// <summary>The SE module's channel count for this placement.</summary>
    public int SeChannels => Placement == SePlacement.Pre ? Inplanes : OutPlanes;

    /// <summary>conv1: 1x1, inplanes → planes.</summary>
    public Conv2dGeometry Conv1 => Conv2dGeometry.Square(Inplanes, Planes, 1, StrideIn1x1 ? Stride : 1);

    /// <summary>conv2: 3x3, padding 1, planes → planes.</summary>
    public Conv2dGeometry Conv2 => Conv2dGeometry.Square(Planes, Planes, 3, StrideIn1x1 ? 1 : Stride, 1);

    /// <summary>conv3: 1x1, planes → planes · expansion.</summary>
    public Conv2dGeometry Conv3 => Conv2dGeometry.Square(Planes, OutPlanes, 1);

    /// <summary>downsample.0: 1x1, stride, inplanes → planes · expansion.</summary>
    public Conv2dGeometry Downsample => Conv2dGeometry.Square(Inplanes, OutPlanes, 1, Stride);

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad value.</summary>
    public void Validate()
    {
        if (Inplanes < 1) throw new ArgumentException($"se_resnet_block: inplanes must be at least 1, got {Inplanes}.");
        if (Planes < 1) throw new ArgumentException($"se_resnet_block: planes must be at least 1, got {Planes}.");
        if (Stride < 1) throw new ArgumentException($"se_resnet_block: stride must be at least 1, got {Stride}.");
        if (Expansion < 1) throw new ArgumentException($"se_resnet_block: expansion must be at least 1, got {Expansion}.");
        if (!(Eps > 0) || !double.IsFinite(Eps)) throw new ArgumentException($"se_resnet_block: eps must be positive and finite, got {Eps}.");
        if (!Enum.IsDefined(Placement)) throw new ArgumentException($"se_resnet_block: unknown placement {Placement}.");
        if (Se.Channels != SeChannels)
            throw new ArgumentException($"se_resnet_block: the SE module has {Se.Channels} channels, the {Placement} placement needs {SeChannels}.");
    }
}

/// <summary>An eval-mode BatchNorm2d's state_dict entries.</summary>
/// <typeparam name="T">float or double.</typeparam>
/// <param name="Weight">γ [C].</param>
/// <param name="Bias">β [C].</param>
/// <param name="RunningMean">[C].</param>
/// <param name="RunningVar">[C].</param>
public sealed record BatchNormParameters<T>(DenseTensor<T> Weight, DenseTensor<T> Bias, DenseTensor<T> RunningMean, DenseTensor<T> RunningVar)
    where T : IFloatingPointIeee754<T>;

/// <summary>The block's parameters under timm's names.</summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class SeResNetBlockParameters<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>conv1.weight [planes, inplanes, 1, 1].</summary>
    public required DenseTensor<T> Conv1 { get; init; }

    /// <summary>bn1.*.</summary>
    public required BatchNormParameters<T> Bn1 { get; init; }

    /// <summary>conv2.weight [planes, planes, 3, 3].</summary>
    public required DenseTensor<T> Conv2 { get; init; }

    /// <summary>bn2.*.</summary>
    public required BatchNormParameters<T> Bn2 { get; init; }

    /// <summary>conv3.weight [planes·expansion, planes, 1, 1].</summary>
    public required DenseTensor<T> Conv3 { get; init; }

    /// <summary>bn3.*.</summary>
    public required BatchNormParameters<T> Bn3 { get; init; }

    /// <summary>se.fc1.*, se.fc2.*.</summary>
    public required SeParameters<T> Se { get; init; }

    /// <summary>downsample.0.weight [planes·expansion, inplanes, 1, 1], or null without downsample.</summary>
    public DenseTensor<T>? DownConv { get; init; }

    /// <summary>downsample.1.*, or null without downsample.</summary>
    public BatchNormParameters<T>? DownBn { get; init; }
}

/// <summary>The block's gradients (BN running statistics have none).</summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class SeResNetBlockGradients<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>x.grad.</summary>
    public required DenseTensor<T> Dx { get; init; }

    /// <summary>Parameter gradients by state_dict name + ".grad" (conv weights [O, I, kh, kw]; SE weights [out, in]).</summary>
    public required Dictionary<string, DenseTensor<T>> Parameters { get; init; }

    /// <summary>The SE module's gradients.</summary>
    public required SeGradients<T> Se { get; init; }
}

/// <summary>Everything the backward needs from the forward.</summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class SeResNetBlockState<T> where T : IFloatingPointIeee754<T>
{
    internal DenseTensor<T> X { get; init; } = null!;
    internal DenseTensor<T> U { get; init; } = null!;
    internal SeForwardState<T>? SeState { get; init; }
    internal DenseTensor<T> T1 { get; init; } = null!;
    internal DenseTensor<T> B1 { get; init; } = null!;
    internal DenseTensor<T> A1 { get; init; } = null!;
    internal DenseTensor<T> T2 { get; init; } = null!;
    internal DenseTensor<T> B2 { get; init; } = null!;
    internal DenseTensor<T> A2 { get; init; } = null!;
    internal DenseTensor<T> T3 { get; init; } = null!;
    internal DenseTensor<T> F0 { get; init; } = null!;
    internal DenseTensor<T>? TD { get; init; }
    internal DenseTensor<T> Sc { get; init; } = null!;
    internal DenseTensor<T> V { get; init; } = null!;
    internal DenseTensor<T> O { get; init; } = null!;

    /// <summary>The block's output.</summary>
    public required DenseTensor<T> Y { get; init; }
}

/// <summary>
/// The SE-ResNet bottleneck block in eval mode (BatchNorm with running statistics), forward and backward side by side
/// (docs/derivations/se.md, "The SE-ResNet block", Eqs. (block.1)–(block.19)). F is conv1 (1x1) → bn1 → relu →
/// conv2 (3x3, stride) → bn2 → relu → conv3 (1x1) → bn3; the shortcut is x, or downsample.0 (1x1 conv, stride) →
/// downsample.1 (BN). The SE module sits where <see cref="SeResNetBlockOptions.Placement"/> says. Built from
/// <see cref="Conv2d"/>, <see cref="BatchNorm2d"/> and <see cref="SqueezeExcitation"/> (float32: its fast twin),
/// whose summation orders it inherits; the block's own sums are single elementwise additions of two terms.
/// </summary>
public static class SeResNetBlock
{
    /// <summary>The forward pass.</summary>
    public static SeResNetBlockState<T> Forward<T>(SeResNetBlockOptions o, DenseTensor<T> x, SeResNetBlockParameters<T> p, TraceLog? trace = null)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(p);
        o.Validate();
        ShapeUtil.RequireRank(x, "x", 4, "N, C, H, W");
        if (x.Dim(1) != o.Inplanes) throw new ShapeMismatchException("x", $"[N, {o.Inplanes}, H, W] (inplanes = {o.Inplanes})", x.ShapeArray());

        // Eq. (block.1): u = SE(x) for SE-PRE, else x.
        SeForwardState<T>? se = null;
        var u = x;
        if (o.Placement == SePlacement.Pre)
        {
            se = SeForward(o.Se, x, p.Se);
            u = se.Y;
        }
        trace?.Forward("block.1", "u", u);

        // Eq. (block.2): a1 = relu(bn1(conv1(u))).
        var t1 = Conv2d.Forward(u, p.Conv1, null, o.Conv1);
        var b1 = Bn(t1, p.Bn1, o.Eps, "bn1");
        var a1 = Relu(b1);
        trace?.Forward("block.2", "a1", a1);

        // Eq. (block.3): a2 = relu(bn2(conv2(a1))).
        var t2 = Conv2d.Forward(a1, p.Conv2, null, o.Conv2);
        var b2 = Bn(t2, p.Bn2, o.Eps, "bn2");
        var a2 = Relu(b2);
        trace?.Forward("block.3", "a2", a2);

        // Eq. (block.4): f0 = bn3(conv3(a2)).
        var t3 = Conv2d.Forward(a2, p.Conv3, null, o.Conv3);
        var f0 = Bn(t3, p.Bn3, o.Eps, "bn3");
        trace?.Forward("block.4", "f0", f0);

        // Eq. (block.5): f = SE(f0) for the standard placement, else f0.
        var f = f0;
        if (o.Placement == SePlacement.Standard)
        {
            se = SeForward(o.Se, f0, p.Se);
            f = se.Y;
        }
        trace?.Forward("block.5", "f", f);

        // Eq. (block.6): sc = downsample(x) or x.
        DenseTensor<T>? td = null;
        var sc = x;
        if (o.HasDownsample)
        {
            td = Conv2d.Forward(x, p.DownConv!, null, o.Downsample);
            sc = Bn(td, p.DownBn!, o.Eps, "downsample.1");
        }
        trace?.Forward("block.6", "sc", sc);
        if (!sc.HasShape(f.Shape))
            throw new ShapeMismatchException("shortcut", ShapeUtil.Format(f.Shape), sc.ShapeArray());

        // Eq. (block.7): sc' = SE(sc) for SE-Identity, else sc.
        var scp = sc;
        if (o.Placement == SePlacement.Identity)
        {
            se = SeForward(o.Se, sc, p.Se);
            scp = se.Y;
        }
        trace?.Forward("block.7", "sc'", scp);

        // Eq. (block.8): v = f + sc', o = relu(v).
        var v = f.ZerosLike();
        for (int i = 0; i < v.Length; i++) v.Data[i] = f.Data[i] + scp.Data[i];
        var outp = Relu(v);
        trace?.Forward("block.8", "o", outp);

        // Eq. (block.9): y = SE(o) for SE-POST, else o.
        var y = outp;
        if (o.Placement == SePlacement.Post)
        {
            se = SeForward(o.Se, outp, p.Se);
            y = se.Y;
        }
        trace?.Forward("block.9", "y", y);

        return new SeResNetBlockState<T>
        {
            X = x, U = u, SeState = se, T1 = t1, B1 = b1, A1 = a1, T2 = t2, B2 = b2, A2 = a2, T3 = t3, F0 = f0, TD = td,
            Sc = sc, V = v, O = outp, Y = y,
        };
    }

    /// <summary>The backward pass from dy = ∂L/∂y.</summary>
    public static SeResNetBlockGradients<T> Backward<T>(SeResNetBlockOptions o, SeResNetBlockParameters<T> p, SeResNetBlockState<T> st,
        DenseTensor<T> dy, TraceLog? trace = null)
        where T : IFloatingPointIeee754<T>
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(st);
        ArgumentNullException.ThrowIfNull(dy);
        ShapeUtil.Require(dy, "y.grad", st.Y.ShapeArray());
        var grads = new Dictionary<string, DenseTensor<T>>(StringComparer.Ordinal);
        SeGradients<T>? seGrads = null;

        // Eq. (block.10): do = SE-backward(dy) for SE-POST, else dy.
        var dO = dy;
        if (o.Placement == SePlacement.Post)
        {
            seGrads = SeBackward(o.Se, p.Se, st.SeState!, dy);
            dO = seGrads.Dx;
        }
        trace?.Backward("block.10", "do", dO);

        // Eq. (block.11): dv = do · relu'(v); the sum hands dv to both branches: df = dsc' = dv.
        var dv = ReluBackward(dO, st.V);
        trace?.Backward("block.11", "dv", dv);

        // Eq. (block.12): dsc = SE-backward(dv) for SE-Identity, else dv.
        var dsc = dv;
        if (o.Placement == SePlacement.Identity)
        {
            seGrads = SeBackward(o.Se, p.Se, st.SeState!, dv);
            dsc = seGrads.Dx;
        }
        trace?.Backward("block.12", "dsc", dsc);

        // Eq. (block.13): the shortcut's contribution to dx.
        DenseTensor<T> dxShort;
        if (o.HasDownsample)
        {
            dxShort = ConvBnBackward(dsc, st.X, p.DownConv!, o.Downsample, st.TD!, p.DownBn!, o.Eps, "downsample.0", "downsample.1", grads);
        }
        else dxShort = dsc;
        trace?.Backward("block.13", "dx_shortcut", dxShort);

        // Eq. (block.14): df0 = SE-backward(dv) for the standard placement, else dv.
        var df0 = dv;
        if (o.Placement == SePlacement.Standard)
        {
            seGrads = SeBackward(o.Se, p.Se, st.SeState!, dv);
            df0 = seGrads.Dx;
        }
        trace?.Backward("block.14", "df0", df0);

        // Eq. (block.15): through bn3 and conv3 to da2.
        var da2 = ConvBnBackward(df0, st.A2, p.Conv3, o.Conv3, st.T3, p.Bn3, o.Eps, "conv3", "bn3", grads);
        trace?.Backward("block.15", "da2", da2);

        // Eq. (block.16): through relu, bn2, conv2 to da1.
        var da1 = ConvBnBackward(ReluBackward(da2, st.B2), st.A1, p.Conv2, o.Conv2, st.T2, p.Bn2, o.Eps, "conv2", "bn2", grads);
        trace?.Backward("block.16", "da1", da1);

        // Eq. (block.17): through relu, bn1, conv1 to du.
        var du = ConvBnBackward(ReluBackward(da1, st.B1), st.U, p.Conv1, o.Conv1, st.T1, p.Bn1, o.Eps, "conv1", "bn1", grads);
        trace?.Backward("block.17", "du", du);

        // Eq. (block.18): dx_residual = SE-backward(du) for SE-PRE, else du.
        var dxRes = du;
        if (o.Placement == SePlacement.Pre)
        {
            seGrads = SeBackward(o.Se, p.Se, st.SeState!, du);
            dxRes = seGrads.Dx;
        }
        trace?.Backward("block.18", "dx_residual", dxRes);

        // Eq. (block.19): dx = dx_residual + dx_shortcut (one addition per element: order-free).
        var dx = st.X.ZerosLike();
        for (int i = 0; i < dx.Length; i++) dx.Data[i] = dxRes.Data[i] + dxShort.Data[i];
        trace?.Backward("block.19", "dx", dx);

        return new SeResNetBlockGradients<T> { Dx = dx, Parameters = grads, Se = seGrads! };
    }

    private static SeForwardState<T> SeForward<T>(SeOptions o, DenseTensor<T> x, SeParameters<T> p) where T : IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float)
            ? (SeForwardState<T>)(object)SqueezeExcitationFast.Forward(o, (DenseTensor<float>)(object)x, (SeParameters<float>)(object)p)
            : SqueezeExcitation.Forward(o, x, p);

    private static SeGradients<T> SeBackward<T>(SeOptions o, SeParameters<T> p, SeForwardState<T> st, DenseTensor<T> dy) where T : IFloatingPointIeee754<T> =>
        typeof(T) == typeof(float)
            ? (SeGradients<T>)(object)SqueezeExcitationFast.Backward(o, (SeParameters<float>)(object)p, (SeForwardState<float>)(object)st, (DenseTensor<float>)(object)dy)
            : SqueezeExcitation.Backward(o, p, st, dy);

    /// <summary>
    /// The backward of conv → eval-mode BN: from ∂L/∂(BN output) records <c>{bnName}.weight|bias.grad</c> and
    /// <c>{convName}.weight.grad</c> in <paramref name="grads"/>, and returns ∂L/∂(conv input).
    /// </summary>
    private static DenseTensor<T> ConvBnBackward<T>(DenseTensor<T> dBnOut, DenseTensor<T> convInput, DenseTensor<T> convWeight,
        Conv2dGeometry geometry, DenseTensor<T> bnInput, BatchNormParameters<T> bn, double eps, string convName, string bnName,
        Dictionary<string, DenseTensor<T>> grads) where T : IFloatingPointIeee754<T>
    {
        var g = BatchNorm2d.BackwardEval(dBnOut, bnInput, bn.Weight, bn.RunningMean, bn.RunningVar, eps, true, bnName);
        grads[bnName + ".weight.grad"] = g.Weight!;
        grads[bnName + ".bias.grad"] = g.Bias!;
        grads[convName + ".weight.grad"] = Conv2d.BackwardWeight(convInput, g.X, geometry);
        return Conv2d.BackwardInput(g.X, convWeight, geometry, convInput.Dim(2), convInput.Dim(3));
    }

    private static DenseTensor<T> Bn<T>(DenseTensor<T> x, BatchNormParameters<T> p, double eps, string name) where T : IFloatingPointIeee754<T> =>
        BatchNorm2d.ForwardEval(x, p.Weight, p.Bias, p.RunningMean, p.RunningVar, eps, name);

    private static DenseTensor<T> Relu<T>(DenseTensor<T> v) where T : IFloatingPointIeee754<T>
    {
        var r = v.ZerosLike();
        for (int i = 0; i < r.Length; i++) r.Data[i] = Activations.Relu(v.Data[i]);
        return r;
    }

    /// <summary>dv = dr · relu'(v), relu'(0) = 0.</summary>
    private static DenseTensor<T> ReluBackward<T>(DenseTensor<T> dr, DenseTensor<T> v) where T : IFloatingPointIeee754<T>
    {
        var d = v.ZerosLike();
        for (int i = 0; i < d.Length; i++) d.Data[i] = dr.Data[i] * Activations.ReluGrad(v.Data[i]);
        return d;
    }
}
