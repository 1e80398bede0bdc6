using System.Numerics;
using Attention.Reference.Modules;
using Attention.Reference.Tensors;

namespace Attention.Reference.Layers;

/// <summary>
/// Squeeze-and-Excitation as the paper writes it, with the SENet ablation options (<see cref="SeOptions"/>: average or
/// max squeeze, sigmoid or hard-sigmoid gate, with or without biases): children <c>fc1</c> [hidden, C] and
/// <c>fc2</c> [C, hidden] (<c>nn.Linear</c>; a 1x1 convolution's [out, in, 1, 1] is accepted too). The forward and
/// backward are <see cref="SqueezeExcitation"/>'s literal formulas (docs/derivations/se.md); float32 on the fast path
/// runs <see cref="SqueezeExcitationFast"/>. fc1 and fc2 hold the parameters; the module computes with them.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class SqueezeExcitationLayer<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    private readonly Linear<T> _fc1, _fc2;

    /// <summary>Creates the module.</summary>
    public SqueezeExcitationLayer(SeOptions options)
    {
        Options = options ?? throw new ArgumentNullException(nameof(options));
        _fc1 = Child("fc1", new Linear<T>(options.Channels, options.Hidden, options.Bias));
        _fc2 = Child("fc2", new Linear<T>(options.Hidden, options.Channels, options.Bias));
    }

    /// <summary>The options.</summary>
    public SeOptions Options { get; }

    /// <inheritdoc />
    public override string Kind => "SqueezeExcitation";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input, Options.Channels);
        return input;
    }

    private SeParameters<T> Parameters() => new(Options, _fc1.Weight.Value, _fc1.Bias?.Value, _fc2.Weight.Value, _fc2.Bias?.Value);

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        var p = Parameters();
        if (pass.Kernels == KernelPath.Fast && typeof(T) == typeof(float) && pass.Trace is null)
        {
            var stf = SqueezeExcitationFast.Forward(Options, (DenseTensor<float>)(object)x, (SeParameters<float>)(object)p);
            Save(pass, (object)stf);
            return (DenseTensor<T>)(object)stf.Y;
        }
        var st = SqueezeExcitation.Forward(Options, x, p, pass.Trace);
        Save(pass, st);
        return st.Y;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var saved = Restore<object>(pass);
        var p = Parameters();
        SeGradients<T> g = saved is SeForwardState<T> st
            ? SqueezeExcitation.Backward(Options, p, st, dy, pass.Trace)
            : (SeGradients<T>)(object)SqueezeExcitationFast.Backward(Options, (SeParameters<float>)(object)p,
                (SeForwardState<float>)saved, (DenseTensor<float>)(object)dy);
        _fc1.Weight.Accumulate(g.DW1);
        _fc2.Weight.Accumulate(g.DW2);
        if (g.DB1 is not null) _fc1.Bias!.Accumulate(g.DB1);
        if (g.DB2 is not null) _fc2.Bias!.Accumulate(g.DB2);
        return g.Dx;
    }
}

/// <summary>
/// The authors' <c>CoordAtt(inp, oup, reduction)</c> (coordatt.py): children <c>conv1</c> (1x1, C → mip, bias),
/// <c>bn1</c> (BatchNorm2d(mip)), <c>conv_h</c> and <c>conv_w</c> (1x1, mip → C, bias); the h_swish between bn1 and
/// the convolutions and both sigmoids are functionals. Forward and backward are <see cref="CoordinateAttention"/>'s
/// (docs/derivations/ca.md); float32 on the fast path runs <see cref="CoordinateAttentionFast"/>. In training mode
/// bn1 normalises with batch statistics and its running statistics are updated.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class CoordAttLayer<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    private readonly Linear<T> _conv1, _convH, _convW;
    private readonly BatchNorm2dLayer<T> _bn1;

    /// <summary>Creates the module.</summary>
    public CoordAttLayer(int channels, int mip, double eps = 1e-5, double momentum = 0.1)
    {
        _conv1 = Child("conv1", new Linear<T>(channels, mip, true, convForm: true));
        _bn1 = Child("bn1", new BatchNorm2dLayer<T>(mip, eps, momentum));
        _convH = Child("conv_h", new Linear<T>(mip, channels, true, convForm: true));
        _convW = Child("conv_w", new Linear<T>(mip, channels, true, convForm: true));
        Channels = channels;
        Mip = mip;
    }

    /// <summary>C.</summary>
    public int Channels { get; }

    /// <summary>The hidden width.</summary>
    public int Mip { get; }

    /// <inheritdoc />
    public override string Kind => "CoordAtt";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input, Channels);
        return input;
    }

    private CoordinateAttentionParameters<T> Parameters() => new()
    {
        Conv1Weight = _conv1.Weight.Value.Reshape(Mip, Channels), Conv1Bias = _conv1.Bias!.Value,
        BnWeight = _bn1.Weight.Value, BnBias = _bn1.Bias.Value,
        BnRunningMean = _bn1.RunningMean.Value, BnRunningVar = _bn1.RunningVar.Value,
        ConvHWeight = _convH.Weight.Value.Reshape(Channels, Mip), ConvHBias = _convH.Bias!.Value,
        ConvWWeight = _convW.Weight.Value.Reshape(Channels, Mip), ConvWBias = _convW.Bias!.Value,
    };

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        var p = Parameters();
        CoordinateAttentionForward<T> f = pass.Kernels == KernelPath.Fast && typeof(T) == typeof(float) && pass.Trace is null
            ? (CoordinateAttentionForward<T>)(object)CoordinateAttentionFast.Forward((DenseTensor<float>)(object)x,
                (CoordinateAttentionParameters<float>)(object)p, pass.Training, _bn1.Eps, _bn1.Momentum)
            : CoordinateAttention.Forward(x, p, pass.Training, _bn1.Eps, _bn1.Momentum, pass.Trace);
        if (pass.Training)
        {
            _bn1.RunningMean.Value = f.RunningMean;
            _bn1.RunningVar.Value = f.RunningVar;
        }
        Save(pass, f);
        return f.Y;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var f = Restore<CoordinateAttentionForward<T>>(pass);
        var g = typeof(T) == typeof(float) && f is CoordinateAttentionForward<float> ff && IsFast(pass)
            ? (CoordinateAttentionGradients<T>)(object)CoordinateAttentionFast.Backward(ff, (DenseTensor<float>)(object)dy)
            : CoordinateAttention.Backward(f, dy, pass.Trace);
        _conv1.Weight.Accumulate(g.Conv1Weight.Reshape(_conv1.Weight.Value.ShapeArray()));
        _conv1.Bias!.Accumulate(g.Conv1Bias);
        _bn1.Weight.Accumulate(g.BnWeight);
        _bn1.Bias.Accumulate(g.BnBias);
        _convH.Weight.Accumulate(g.ConvHWeight.Reshape(_convH.Weight.Value.ShapeArray()));
        _convH.Bias!.Accumulate(g.ConvHBias);
        _convW.Weight.Accumulate(g.ConvWWeight.Reshape(_convW.Weight.Value.ShapeArray()));
        _convW.Bias!.Accumulate(g.ConvWBias);
        return g.X;
    }

    private static bool IsFast(Pass<T> pass) => pass.Kernels == KernelPath.Fast && pass.Trace is null;
}
