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
