namespace Attention.Reference.Kernels.Conv;

/// <summary>
/// The geometry of a 2-D convolution with PyTorch <c>nn.Conv2d</c> semantics: NCHW input, weight
/// <c>[O, I/groups, kh, kw]</c>, output size ⌊(H + 2·pad − dil·(k − 1) − 1) / stride⌋ + 1 per axis
/// (docs/derivations/conv2d.md, Eq. (conv.2)).
/// </summary>
/// <param name="InChannels">I, the input channels.</param>
/// <param name="OutChannels">O, the output channels.</param>
/// <param name="Kernel">(kh, kw).</param>
/// <param name="Stride">(sh, sw).</param>
/// <param name="Padding">(ph, pw): zeros added on each side.</param>
/// <param name="Dilation">(dh, dw).</param>
/// <param name="Groups">G: I and O must both be divisible by G; groups = I = O is depthwise.</param>
public readonly record struct Conv2dGeometry(
    int InChannels, int OutChannels, (int H, int W) Kernel, (int H, int W) Stride,
    (int H, int W) Padding, (int H, int W) Dilation, int Groups)
{
    /// <summary>A square geometry with the same value on both axes (as PyTorch's <c>_pair</c> of an int).</summary>
    public static Conv2dGeometry Square(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0,
        int dilation = 1, int groups = 1) =>
        new(inChannels, outChannels, (kernel, kernel), (stride, stride), (padding, padding), (dilation, dilation), groups);

    /// <summary>I / G: input channels seen by each output channel.</summary>
    public int InPerGroup => InChannels / Groups;

    /// <summary>O / G: output channels per group.</summary>
    public int OutPerGroup => OutChannels / Groups;

    /// <summary>The reduction length per output element: (I / G)·kh·kw.</summary>
    public int ReductionLength => InPerGroup * Kernel.H * Kernel.W;

    /// <summary>The weight's shape <c>[O, I/groups, kh, kw]</c>.</summary>
    public int[] WeightShape => [OutChannels, InPerGroup, Kernel.H, Kernel.W];

    /// <summary>
    /// Throws <see cref="ArgumentException"/> naming the offending values unless every size is positive (padding
    /// non-negative) and both channel counts are divisible by <see cref="Groups"/>.
    /// </summary>
    public void Validate()
    {
        if (InChannels <= 0) throw new ArgumentException($"conv2d: in_channels must be positive, got {InChannels}.");
        if (OutChannels <= 0) throw new ArgumentException($"conv2d: out_channels must be positive, got {OutChannels}.");
        if (Groups <= 0) throw new ArgumentException($"conv2d: groups must be positive, got {Groups}.");
        if (Kernel.H <= 0 || Kernel.W <= 0) throw new ArgumentException($"conv2d: kernel_size must be positive, got [{Kernel.H}, {Kernel.W}].");
        if (Stride.H <= 0 || Stride.W <= 0) throw new ArgumentException($"conv2d: stride must be positive, got [{Stride.H}, {Stride.W}].");
        if (Dilation.H <= 0 || Dilation.W <= 0) throw new ArgumentException($"conv2d: dilation must be positive, got [{Dilation.H}, {Dilation.W}].");
        if (Padding.H < 0 || Padding.W < 0) throw new ArgumentException($"conv2d: padding must be non-negative, got [{Padding.H}, {Padding.W}].");
        if (InChannels % Groups != 0)
            throw new ArgumentException($"conv2d: in_channels ({InChannels}) must be divisible by groups ({Groups}).");
        if (OutChannels % Groups != 0)
            throw new ArgumentException($"conv2d: out_channels ({OutChannels}) must be divisible by groups ({Groups}).");
    }

    /// <summary>
    /// Eq. (conv.2): the output size (Ho, Wo) for an input of size (inH, inW). Validates the geometry and throws
    /// <see cref="ArgumentException"/> when the dilated kernel is larger than the padded input.
    /// </summary>
    public (int H, int W) OutputSize(int inH, int inW)
    {
        Validate();
        if (inH <= 0 || inW <= 0) throw new ArgumentException($"conv2d: input spatial size must be positive, got [{inH}, {inW}].");
        long effH = (long)Dilation.H * (Kernel.H - 1) + 1, effW = (long)Dilation.W * (Kernel.W - 1) + 1;
        long padH = inH + 2L * Padding.H, padW = inW + 2L * Padding.W;
        if (effH > padH || effW > padW)
            throw new ArgumentException(
                $"conv2d: the dilated kernel [{effH}, {effW}] (kernel_size [{Kernel.H}, {Kernel.W}], dilation [{Dilation.H}, {Dilation.W}]) " +
                $"is larger than the padded input [{padH}, {padW}] (input [{inH}, {inW}], padding [{Padding.H}, {Padding.W}]).");
        long ho = (padH - effH) / Stride.H + 1, wo = (padW - effW) / Stride.W + 1;
        if (ho > int.MaxValue || wo > int.MaxValue)
            throw new ArgumentException(
                $"conv2d: the output [{ho}, {wo}] (input [{inH}, {inW}], padding [{Padding.H}, {Padding.W}]) is too large.");
        return ((int)ho, (int)wo);
    }

    /// <summary>Multiply-adds per image: O·Ho·Wo·(I/G)·kh·kw.</summary>
    public long MacsPerImage(int inH, int inW)
    {
        var (ho, wo) = OutputSize(inH, inW);
        return (long)OutChannels * ho * wo * ReductionLength;
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"conv2d(in={InChannels}, out={OutChannels}, kernel=[{Kernel.H}, {Kernel.W}], stride=[{Stride.H}, {Stride.W}], " +
        $"padding=[{Padding.H}, {Padding.W}], dilation=[{Dilation.H}, {Dilation.W}], groups={Groups})";
}
