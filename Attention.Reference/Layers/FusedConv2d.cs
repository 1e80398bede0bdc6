using System.Numerics;
using Attention.Reference.Ops;
using Attention.Reference.Kernels.Conv;
using Attention.Reference.Tensors;

namespace Attention.Reference.Layers;

/// <summary>
/// Inference only: a convolution with the following eval-mode BatchNorm folded into its weights and bias, and the
/// following activation applied in place to its output. The folded parameters are computed in float64 from the
/// layers' own values and rounded once: w' = w·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β. Replaces Conv → BN (→ act)
/// in an <see cref="Models.InferencePlan{T}"/>; it has no parameters of its own (no state_dict keys) and no backward.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class FusedConv2d<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    protected internal override bool OutputIsOwnBuffer => true;

    private readonly DenseTensor<T> _weight;
    private readonly DenseTensor<T> _bias;

    /// <summary>Folds <paramref name="bn"/> (which must follow <paramref name="conv"/>) into it; <paramref name="activation"/> may be null.</summary>
    public FusedConv2d(Conv2dLayer<T> conv, BatchNorm2dLayer<T>? bn, IInPlaceActivation<T>? activation)
    {
        ArgumentNullException.ThrowIfNull(conv);
        Geometry = conv.Geometry;
        Activation = activation;
        Source = conv.DisplayName;
        int o = Geometry.OutChannels, per = conv.Weight.Value.Length / o;
        _weight = conv.Weight.Value.ZerosLike();
        _bias = new DenseTensor<T>(o);
        for (int c = 0; c < o; c++)
        {
            double b = conv.Bias is null ? 0 : double.CreateChecked(conv.Bias.Value.Data[c]), scale = 1;
            if (bn is not null)
            {
                double var = double.CreateChecked(bn.RunningVar.Value.Data[c]);
                if (!(var >= 0)) throw new ArgumentException($"{bn.DisplayName}: running_var[{c}] = {var} cannot be folded");
                scale = double.CreateChecked(bn.Weight.Value.Data[c]) / Math.Sqrt(var + bn.Eps);
                b = (b - double.CreateChecked(bn.RunningMean.Value.Data[c])) * scale + double.CreateChecked(bn.Bias.Value.Data[c]);
            }
            for (int i = 0; i < per; i++)
                _weight.Data[c * per + i] = T.CreateChecked(double.CreateChecked(conv.Weight.Value.Data[c * per + i]) * scale);
            _bias.Data[c] = T.CreateChecked(b);
        }
    }

    /// <summary>The convolution's geometry.</summary>
    public Conv2dGeometry Geometry { get; }

    /// <summary>The fused activation, or null.</summary>
    public IInPlaceActivation<T>? Activation { get; }

    /// <summary>The module path of the convolution it replaces.</summary>
    public string Source { get; }

    /// <inheritdoc />
    public override string Kind => "FusedConv2d";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input, Geometry.InChannels);
        var (ho, wo) = Geometry.OutputSize(input[2], input[3]);
        return [input[0], Geometry.OutChannels, ho, wo];
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        // The plan's memory: this layer's output buffer is allocated once and overwritten by every forward (a
        // convolution runs once per forward, and its output is consumed before the next forward).
        if (x.Rank != 4 || x.Dim(1) != Geometry.InChannels) RequireNchw(x.ShapeArray(), Geometry.InChannels);
        var (ho, wo) = Geometry.OutputSize(x.Dim(2), x.Dim(3));
        var output = PlanBuffer(ref _output, [x.Dim(0), Geometry.OutChannels, ho, wo]);
        // The activation runs in the kernel's epilogue, on each piece of output while it is in cache.
        // The weights never change after folding, so the kernel keeps their packing between forwards.
        // Winograd F(2×2, 3×3) where the plan allows it and it is faster (docs/inference.md: its speed and its error).
        if (pass.Winograd && Conv2d.WinogradPays<T>(Geometry, x.Dim(2), x.Dim(3)))
        {
            var fused = Activation as IConvEpilogue<T>;
            Conv2d.ForwardWinograd(x, _weight, _bias, Geometry, output, fused, _winograd);
            if (fused is null) Activation?.ApplyInPlace(output);
        }
        else if (Activation is IConvEpilogue<T> epilogue) Conv2d.Forward(x, _weight, _bias, Geometry, output, epilogue, _pack);
        else
        {
            Conv2d.Forward(x, _weight, _bias, Geometry, output, null, _pack);
            Activation?.ApplyInPlace(output);
        }
        return output;
    }

    private DenseTensor<T>? _output;
    private readonly ConvWeightPack _pack = new();
    private readonly ConvWeightPack _winograd = new();

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass) =>
        throw new NotSupportedException($"{Source}: a fused inference convolution has no backward pass.");
}

/// <summary>An activation that can overwrite a tensor it owns (inference plans).</summary>
/// <typeparam name="T">float or double.</typeparam>
public interface IInPlaceActivation<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>x ← act(x), element by element.</summary>
    void ApplyInPlace(DenseTensor<T> x);
}
