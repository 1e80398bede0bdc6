namespace Attention.Reference.Tensors;

/// <summary>One named intermediate of a module's computation, tagged with the equation that defines it.</summary>
/// <param name="Equation">The equation label in docs/derivations, e.g. "se-1".</param>
/// <param name="Name">The intermediate's name as in the code and the docs, e.g. "z".</param>
/// <param name="Phase">"forward" or "backward".</param>
/// <param name="Value">A copy of the value, as float64.</param>
public sealed record TraceStep(string Equation, string Name, string Phase, DenseTensor<double> Value);

/// <summary>
/// Collects the named intermediates of a forward and backward pass in the order of the derivation, for
/// <c>attention-ref trace</c>. Modules take it as an optional argument and record only when it is given.
/// </summary>
public sealed class TraceLog
{
    private readonly List<TraceStep> _steps = new();

    /// <summary>The steps in the order they were recorded.</summary>
    public IReadOnlyList<TraceStep> Steps => _steps;

    /// <summary>Records a copy of <paramref name="value"/>.</summary>
    public void Forward<T>(string equation, string name, DenseTensor<T> value) where T : IFloatingPointIeee754<T> =>
        _steps.Add(new TraceStep(equation, name, "forward", value.Cast<double>()));

    /// <summary>Records a copy of <paramref name="value"/> as a backward step.</summary>
    public void Backward<T>(string equation, string name, DenseTensor<T> value) where T : IFloatingPointIeee754<T> =>
        _steps.Add(new TraceStep(equation, name, "backward", value.Cast<double>()));
}
