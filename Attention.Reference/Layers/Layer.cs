using Attention.Reference.Kernels;

namespace Attention.Reference.Layers;

/// <summary>
/// Which kernels a pass runs. The choice is explicit and independent of the element type: float64 and float32 can
/// both run either.
/// </summary>
public enum KernelPath
{
    /// <summary>
    /// The oracle: every reduction in its documented, fixed order (the blocked conv2d kernel whose order
    /// docs/derivations/conv2d.md defines; the literal module formulas for SE, CA and GCT).
    /// </summary>
    Oracle,

    /// <summary>
    /// The fast kernels where they differ from the oracle's: Coordinate Attention's float32 sigmoid (the engine's vector
    /// one) and the float32 plane sums of SE, GCT and the global average pool in blocked order
    /// (<see cref="Kernels.SumOrder.Blocked"/>: 64 partial sums, no transposes); the oracle's kernels elsewhere. Every
    /// fast order is fixed too: the same bits for any thread count and vector width.
    /// </summary>
    Fast,
}

/// <summary>
/// Which derivative a backward pass uses where libtorch's differs from the exact one. Today one place:
/// <c>nn.Hardsigmoid</c>'s backward, where libtorch multiplies by the float32-rounded 1/6 even in float64
/// (docs/derivations/pooling-and-activations.md, Eq. (act.14)).
/// </summary>
public enum GradConventions
{
    /// <summary>The exact derivatives (the oracle's default).</summary>
    Exact,

    /// <summary>libtorch's constants, to reproduce PyTorch's gradients (for checking against PyTorch).</summary>
    Libtorch,
}

/// <summary>
/// A named tensor a layer owns: a learnable parameter (it gets a gradient) or a buffer (running statistics), as
/// PyTorch's <c>nn.Parameter</c> and <c>register_buffer</c>.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class Parameter<T> where T : IFloatingPointIeee754<T>
{
    internal Parameter(string name, int[] shape, bool learnable, T fill)
    {
        Name = name;
        _shape = (int[])shape.Clone();
        _fill = fill;
        Learnable = learnable;
    }

    private readonly int[] _shape;
    private readonly T _fill;
    private DenseTensor<T>? _value;

    /// <summary>The name within its layer (<c>weight</c>, <c>running_mean</c>, ...).</summary>
    public string Name { get; }

    /// <summary>The declared shape (known without allocating the value: a state_dict is checked against it first).</summary>
    public ReadOnlySpan<int> Shape => _value is { } v ? v.Shape : _shape;

    /// <summary>
    /// The current value. Loading a state_dict replaces it; a training-mode BatchNorm replaces its buffers. The initial
    /// value is allocated on first use, so a tree whose state_dict is refused allocates none of its parameters.
    /// </summary>
    public DenseTensor<T> Value
    {
        get
        {
            if (_value is null)
            {
                _value = new DenseTensor<T>(_shape);
                if (_fill != T.Zero) Array.Fill(_value.Data, _fill);
            }
            return _value;
        }
        internal set => _value = value;
    }

    /// <summary>True for parameters, false for buffers.</summary>
    public bool Learnable { get; }

    /// <summary>
    /// A second shape a state_dict may give the same values in (a 1x1 convolution's [out, in, 1, 1] for a linear
    /// layer's [out, in], or the reverse), or null.
    /// </summary>
    public int[]? AlternateShape { get; internal set; }

    /// <summary>The shape the loaded state_dict gave (the gradient is reported in it), or null before loading.</summary>
    public int[]? GivenShape { get; internal set; }

    /// <summary>The gradient in the shape the state_dict gave the value (zeros when no backward reached it).</summary>
    public DenseTensor<T> GradInGivenShape() => (Grad ?? Value.ZerosLike()).Reshape(GivenShape ?? Value.ShapeArray());

    /// <summary>The accumulated gradient ∂L/∂value, or null before a backward pass reached it.</summary>
    public DenseTensor<T>? Grad { get; internal set; }

    /// <summary>Adds <paramref name="g"/> into <see cref="Grad"/> (allocating it on first use).</summary>
    internal void Accumulate(DenseTensor<T> g)
    {
        if (Grad is null) { Grad = g.Clone(); return; }
        var d = Grad.Data;
        var s = g.Data;
        for (int i = 0; i < d.Length; i++) d[i] += s[i];
    }
}

/// <summary>
/// One forward (and optionally backward) pass through a layer tree: the mode, the kernels, the tape the backward
/// reads, and the optional dump of every module's output.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class Pass<T> where T : IFloatingPointIeee754<T>
{
    private readonly Dictionary<Layer<T>, Stack<object>> _tape = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<Layer<T>, int> _calls = new(ReferenceEqualityComparer.Instance);

    /// <summary><c>model.train()</c> (batch statistics, running statistics updated) versus <c>model.eval()</c>.</summary>
    public bool Training { get; init; }

    /// <summary>Oracle or fast kernels.</summary>
    public KernelPath Kernels { get; init; } = KernelPath.Oracle;

    /// <summary>
    /// Whether inference plans' float32 3×3 stride-1 convolutions may run Winograd F(2×2, 3×3) where it is faster than
    /// the direct kernel (set by <see cref="Models.InferencePlan{T}"/> from <see cref="Models.InferencePlanOptions"/>;
    /// default false: the direct kernels).
    /// </summary>
    public bool Winograd { get; init; }

    /// <summary>Exact derivatives (default) or libtorch's where they differ.</summary>
    public GradConventions Conventions { get; init; } = GradConventions.Exact;

    /// <summary>Whether layers keep what their backward needs (false for inference: nothing is kept).</summary>
    public bool RecordTape { get; init; } = true;

    /// <summary>
    /// The order of the plane sums (SE's squeeze and ∂s, GCT's embedding and ∂gate, the global average pool):
    /// <see cref="SumOrder.Blocked"/> on the fast path, the oracle's sequential chain otherwise.
    /// </summary>
    public SumOrder SumOrder => Kernels == KernelPath.Fast ? SumOrder.Blocked : SumOrder.Sequential;

    /// <summary>Where the modules record their named intermediates (<c>attention-ref trace</c>), or null.</summary>
    public TraceLog? Trace { get; init; }

    /// <summary>Where module outputs are recorded by path, or null.</summary>
    public ModuleDump<T>? Dump { get; init; }

    /// <summary>
    /// Called by attention modules with their gate (path, gate as [N, C] or [N, C, L]): SE's s, GCT's 1 + tanh(·),
    /// CA's a_h and a_w (as <c>path:a_h</c>, <c>path:a_w</c>). For <c>attention-ref trace</c>; may be null.
    /// </summary>
    public Action<string, DenseTensor<T>>? OnGate { get; init; }

    /// <summary>Called once per module output (path, output): progress reporting and tracing. May be null.</summary>
    public Action<string, DenseTensor<T>>? OnModuleOutput { get; init; }

    internal void Save(Layer<T> layer, object state)
    {
        if (!RecordTape) return;
        if (!_tape.TryGetValue(layer, out var stack)) _tape[layer] = stack = new Stack<object>();
        stack.Push(state);
    }

    internal TState Restore<TState>(Layer<T> layer)
    {
        if (!_tape.TryGetValue(layer, out var stack) || stack.Count == 0)
            throw new InvalidOperationException(
                $"Backward of '{layer.DisplayName}' without a matching forward (run the forward with RecordTape = true).");
        return (TState)stack.Pop();
    }

    /// <summary>
    /// True when nothing observes intermediate values (no tape, no dump, no module-output hook): the only passes in
    /// which an inference plan's layers may reuse buffers and overwrite inputs they own.
    /// </summary>
    public bool InPlaceAllowed => !RecordTape && Dump is null && OnModuleOutput is null && OnGate is null;

    /// <summary>
    /// Where layers take the tensors they return (outputs, input gradients) from, kept across passes, or null: each
    /// pass then allocates new ones. With a cache, the tensors one pass returns are overwritten by the next pass that
    /// uses the same cache (a training loop's or a benchmark's steady state: no fresh pages per call).
    /// </summary>
    public BufferCache<T>? Buffers { get; init; }

    private Dictionary<(Layer<T>, string), int>? _bufferCalls;

    /// <summary>
    /// A tensor of <paramref name="shape"/> for <paramref name="layer"/>'s <paramref name="role"/> (its contents are
    /// undefined: the caller writes every element): from <see cref="Buffers"/> when set, else newly allocated.
    /// </summary>
    internal DenseTensor<T> Uninitialized(Layer<T> layer, string role, ReadOnlySpan<int> shape)
    {
        if (Buffers is null) return New(shape);
        _bufferCalls ??= new();
        _bufferCalls.TryGetValue((layer, role), out int k);
        _bufferCalls[(layer, role)] = k + 1;
        return Buffers.Get(layer, role, k, shape);
    }

    /// <summary>
    /// The layers that may overwrite their input in this pass (an inference plan's compiler decides: the input is a
    /// buffer that the previous step produced and nothing else reads), or null.
    /// </summary>
    internal IReadOnlySet<Layer<T>>? InputOwners { get; init; }

    /// <summary>Whether <paramref name="layer"/> may write its output into its input (see <see cref="InputOwners"/>).</summary>
    internal bool MayOverwriteInput(Layer<T> layer) => InputOwners is { } owners && InPlaceAllowed && owners.Contains(layer);

    /// <summary>Starts a new forward with the same <see cref="Buffers"/>: every layer's first call takes its first buffer again.</summary>
    internal void RestartBuffers() => _bufferCalls?.Clear();

    /// <summary>A new tensor of <paramref name="shape"/>, its contents undefined.</summary>
    internal static DenseTensor<T> New(ReadOnlySpan<int> shape)
    {
        var dims = shape.ToArray();
        return new DenseTensor<T>(GC.AllocateUninitializedArray<T>(checked((int)ShapePlan.Volume(dims))), dims);
    }

    internal int NextCall(Layer<T> layer)
    {
        _calls.TryGetValue(layer, out int k);
        _calls[layer] = k + 1;
        return k;
    }
}

/// <summary>
/// Tensors kept from one pass to the next by (layer, role, call): a pass given this cache reuses the buffers the
/// previous pass returned, as PyTorch's caching allocator does, instead of touching fresh pages every call.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class BufferCache<T> where T : IFloatingPointIeee754<T>
{
    private readonly Dictionary<(Layer<T> Layer, string Role, int Call), DenseTensor<T>> _buffers = new();

    private readonly Dictionary<(Layer<T> Layer, string Role), object> _states = new();

    /// <summary>The state <paramref name="layer"/> kept under <paramref name="role"/> (a forward's per-channel work), or null.</summary>
    internal TState? State<TState>(Layer<T> layer, string role) where TState : class =>
        _states.TryGetValue((layer, role), out var s) ? s as TState : null;

    /// <summary>Keeps <paramref name="state"/> for the next pass's <see cref="State{TState}"/>.</summary>
    internal void Keep(Layer<T> layer, string role, object state) => _states[(layer, role)] = state;

    internal DenseTensor<T> Get(Layer<T> layer, string role, int call, ReadOnlySpan<int> shape)
    {
        if (_buffers.TryGetValue((layer, role, call), out var t) && t.HasShape(shape)) return t;
        t = Pass<T>.New(shape);
        _buffers[(layer, role, call)] = t;
        return t;
    }
}

/// <summary>
/// The outputs of every module a forward pass calls, by module path as PyTorch's <c>named_modules()</c> names
/// them; a module called k &gt; 1 times stores its calls as <c>path</c>, <c>path#1</c>, ... in call order. The order
/// is the order in which the modules returned (a child before its parent), as forward hooks see it.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class ModuleDump<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>The recorded outputs in return order.</summary>
    public TensorSet<T> Outputs { get; } = new("module dump");

    internal void Record(string name, DenseTensor<T> output) => Outputs.Set(name, output);

    /// <summary>The <c>"order"</c> metadata: the names, comma-separated, in return order.</summary>
    public string Order => string.Join(",", Outputs.Names);
}

/// <summary>
/// The shapes a forward pass will produce, worked out before anything is allocated or computed: every module's
/// output shape is checked against its parameters, and the elements of all module outputs are added up (checked
/// 64-bit) for the run's memory plan.
/// </summary>
public sealed class ShapePlan
{
    /// <summary>The elements of every module output the forward produces, summed.</summary>
    public long Elements { get; private set; }

    /// <summary>The number of module outputs counted.</summary>
    public int Outputs { get; private set; }

    private readonly List<(string Name, int[] Shape)> _named = new();
    private readonly Dictionary<string, int> _calls = new(StringComparer.Ordinal);

    /// <summary>The output shape of every named module, in the order the dump would record them (<c>path#k</c> for repeats).</summary>
    public IReadOnlyList<(string Name, int[] Shape)> Named => _named;

    /// <summary>Adds one module output (named when <paramref name="path"/> is a module path).</summary>
    /// <exception cref="OverflowException">The size does not fit in 64 bits.</exception>
    public void Add(int[] shape, string? path = null)
    {
        try
        {
            Elements = checked(Elements + Volume(shape));
        }
        catch (OverflowException)
        {
            throw new OverflowException(
                $"{(string.IsNullOrEmpty(path) ? "the output" : $"the output of '{path}'")} would be {ShapeUtil.Format(shape)}, more elements than 64-bit sizes count");
        }
        Outputs++;
        if (!string.IsNullOrEmpty(path))
        {
            _calls.TryGetValue(path, out int k);
            _calls[path] = k + 1;
            _named.Add((k == 0 ? path : $"{path}#{k}", shape));
        }
    }

    /// <summary>The product of the dimensions, checked; dimensions must be ≥ 0.</summary>
    public static long Volume(int[] shape)
    {
        long v = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"A dimension is negative: {ShapeUtil.Format(shape)}.");
            v = checked(v * d);
        }
        return v;
    }
}

/// <summary>
/// A layer in the spirit of <c>torch.nn.Module</c> and micrograd: named children and named parameters/buffers (so
/// state_dict names come from the tree), a forward that records what its backward needs on the pass's tape, and
/// the backward written beside it. Parameter gradients accumulate in <see cref="Parameter{T}.Grad"/>.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public abstract class Layer<T> where T : IFloatingPointIeee754<T>
{
    private readonly List<(string Name, Layer<T> Child)> _children = new();
    private readonly List<Parameter<T>> _tensors = new();
    private readonly List<string> _ignoredKeys = new();

    /// <summary>The class name as PyTorch would print it (<c>Conv2d</c>, <c>BatchNorm2d</c>, <c>SEModule</c>, ...).</summary>
    public abstract string Kind { get; }

    /// <summary>
    /// The module path in its tree (<c>layer1.0.se</c>), "" for a root, null for a helper that is not a registered
    /// child (a functional op such as <c>F.relu</c>: it is never dumped).
    /// </summary>
    public string? Path { get; private protected set; }

    /// <summary>What messages call this layer's input: <c>x</c> for the root, else "<c>path</c> input".</summary>
    protected string InputName => Path is "" ? "x" : DisplayName + " input";

    /// <summary>The path, or the kind for an unnamed layer (for messages).</summary>
    public string DisplayName => string.IsNullOrEmpty(Path) ? Kind : Path;

    /// <summary>The direct children in registration order.</summary>
    public IReadOnlyList<(string Name, Layer<T> Child)> Children => _children;

    /// <summary>This layer's own parameters and buffers in registration order.</summary>
    public IReadOnlyList<Parameter<T>> Tensors => _tensors;

    /// <summary>Registers a child under <paramref name="name"/> and returns it.</summary>
    protected TChild Child<TChild>(string name, TChild child) where TChild : Layer<T>
    {
        ArgumentNullException.ThrowIfNull(child);
        if (_children.Any(c => c.Name == name)) throw new ArgumentException($"{Kind}: a child named '{name}' exists already.");
        _children.Add((name, child));
        return child;
    }

    /// <summary>Registers a learnable parameter (initial value: <paramref name="fill"/>).</summary>
    protected Parameter<T> Param(string name, int[] shape, double fill = 0) => Add(name, shape, true, fill);

    /// <summary>Registers a buffer (initial value: <paramref name="fill"/>).</summary>
    protected Parameter<T> Buffer(string name, int[] shape, double fill = 0) => Add(name, shape, false, fill);

    /// <summary>
    /// Declares a state_dict key this layer accepts and ignores (BatchNorm's integer <c>num_batches_tracked</c>):
    /// it is neither required nor unexpected.
    /// </summary>
    protected void IgnoredKey(string name) => _ignoredKeys.Add(name);

    private Parameter<T> Add(string name, int[] shape, bool learnable, double fill)
    {
        if (_tensors.Any(p => p.Name == name)) throw new ArgumentException($"{Kind}: a tensor named '{name}' exists already.");
        var p = new Parameter<T>(name, shape, learnable, T.CreateChecked(fill));
        _tensors.Add(p);
        return p;
    }

    /// <summary>
    /// Writes this layer's inference forward into <paramref name="writer"/> after input <paramref name="input"/> and
    /// returns the name of its output (see <see cref="OnExport"/>).
    /// </summary>
    public string Export(IGraphWriter<T> writer, string input)
    {
        ArgumentNullException.ThrowIfNull(writer);
        return OnExport(writer, input);
    }

    /// <summary>
    /// The layer's inference forward as graph nodes, beside <see cref="OnForward"/>: the same operations in the same
    /// order. Layers without an export refuse by name.
    /// </summary>
    protected virtual string OnExport(IGraphWriter<T> writer, string input) =>
        throw new NotSupportedException($"{Kind} '{DisplayName}' has no ONNX export (its forward is a fused kernel, not a tree of exportable layers).");

    /// <summary>The path of a parameter of this layer as a state_dict key.</summary>
    protected string KeyOf(Parameter<T> p) => string.IsNullOrEmpty(Path) ? p.Name : Path + "." + p.Name;

    /// <summary>Makes this layer the root of its tree: assigns every module's path ("" here).</summary>
    public void AssignPaths() => AssignPaths("");

    private void AssignPaths(string path)
    {
        Path = path;
        foreach (var (name, child) in _children) child.AssignPaths(path.Length == 0 ? name : path + "." + name);
    }

    /// <summary>Every module below and including this one, with its path relative to this one (PyTorch's <c>named_modules()</c>).</summary>
    public IEnumerable<(string Path, Layer<T> Module)> NamedModules(string prefix = "")
    {
        yield return (prefix, this);
        foreach (var (name, child) in _children)
            foreach (var m in child.NamedModules(prefix.Length == 0 ? name : prefix + "." + name))
                yield return m;
    }

    /// <summary>
    /// Every parameter and buffer by its state_dict name, in PyTorch's <c>state_dict()</c> order (a module's own
    /// tensors, then its children's).
    /// </summary>
    public IEnumerable<(string Name, Parameter<T> Tensor)> NamedTensors()
    {
        foreach (var (path, m) in NamedModules())
            foreach (var p in m._tensors)
                yield return (path.Length == 0 ? p.Name : path + "." + p.Name, p);
    }

    /// <summary>The learnable parameters by state_dict name (PyTorch's <c>named_parameters()</c>).</summary>
    public IEnumerable<(string Name, Parameter<T> Tensor)> NamedParameters() => NamedTensors().Where(t => t.Tensor.Learnable);

    /// <summary>The state_dict keys the tree accepts and ignores.</summary>
    public IEnumerable<string> IgnoredKeys() =>
        NamedModules().SelectMany(m => m.Module._ignoredKeys.Select(k => m.Path.Length == 0 ? k : m.Path + "." + k));

    /// <summary>Clears every gradient in the tree.</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in NamedTensors()) p.Grad = null;
    }

    /// <summary>
    /// The output shape for an input of shape <paramref name="input"/>, validating it against the parameters without
    /// computing anything; records every module output in <paramref name="plan"/>.
    /// </summary>
    /// <exception cref="ShapeMismatchException">The input does not fit this layer.</exception>
    public int[] InferShape(int[] input, ShapePlan plan)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(plan);
        int[] output;
        try
        {
            output = OnInferShape(input, plan);
        }
        catch (ShapeMismatchException e) when (Path is "" && e.TensorName.EndsWith(" input", StringComparison.Ordinal)
                                                && e.Actual.AsSpan().SequenceEqual(input))
        {
            // The tree's own input reached a layer that cannot take it: to the user that is x.
            throw new ShapeMismatchException("x", e.Expected, input);
        }
        plan.Add(output, Path);
        return output;
    }

    /// <summary>The shape rule (default: the output has the input's shape, as every elementwise layer).</summary>
    protected virtual int[] OnInferShape(int[] input, ShapePlan plan) => input;

    /// <summary>Throws unless <paramref name="input"/> is [N, <paramref name="channels"/>, H, W].</summary>
    protected void RequireNchw(int[] input, int? channels = null)
    {
        if (input.Length != 4 || (channels is { } c && input[1] != c))
            throw new ShapeMismatchException(InputName,
                channels is null ? "[N, C, H, W]" : $"[N, {channels}, H, W] (channels = {channels})", input);
    }

    /// <summary>
    /// Runs the forward pass: <see cref="OnForward"/>, then records the output in the pass's dump under this
    /// module's path (<c>path#k</c> for the k-th repeated call).
    /// </summary>
    public DenseTensor<T> Forward(DenseTensor<T> x, Pass<T> pass)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(pass);
        var y = OnForward(x, pass);
        if (!string.IsNullOrEmpty(Path) && (pass.Dump is not null || pass.OnModuleOutput is not null))
        {
            int k = pass.NextCall(this);
            string name = k == 0 ? Path : $"{Path}#{k}";
            pass.Dump?.Record(name, y);
            pass.OnModuleOutput?.Invoke(name, y);
        }
        return y;
    }

    /// <summary>
    /// The backward pass of the most recent not-yet-reversed forward call of this layer in <paramref name="pass"/>:
    /// accumulates parameter gradients and returns ∂L/∂x.
    /// </summary>
    public DenseTensor<T> Backward(DenseTensor<T> dy, Pass<T> pass)
    {
        ArgumentNullException.ThrowIfNull(dy);
        ArgumentNullException.ThrowIfNull(pass);
        return OnBackward(dy, pass);
    }

    /// <summary>The forward computation. Save what the backward needs with <see cref="Save"/>.</summary>
    protected abstract DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass);

    /// <summary>The backward computation, beside the forward; read the saved state with <see cref="Restore{TState}"/>.</summary>
    protected abstract DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass);

    /// <summary>Keeps <paramref name="state"/> for this call's backward.</summary>
    /// <remarks>Generic, so a tuple is boxed only when the pass records a tape (an inference pass allocates nothing here).</remarks>
    protected void Save<TState>(Pass<T> pass, TState state)
    {
        if (pass.RecordTape) pass.Save(this, state!);
    }

    /// <summary>
    /// Drops what this layer's most recent forward call saved, for a parent that computes this child's adjoint fused
    /// with its own (Coordinate Attention's pools) instead of calling <see cref="Backward"/>.
    /// </summary>
    internal void DropSaved(Pass<T> pass)
    {
        if (pass.RecordTape) pass.Restore<object>(this);
    }

    /// <summary>The state the matching forward call saved.</summary>
    protected TState Restore<TState>(Pass<T> pass) => pass.Restore<TState>(this);

    /// <inheritdoc />
    public override string ToString() => $"{Kind} '{DisplayName}'";
}
