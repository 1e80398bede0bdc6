using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Attention.Reference.Models;

/// <summary>A case is not well-formed: an unknown key, a missing or ill-typed value, an unknown module.</summary>
public sealed class CaseFormatException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CaseFormatException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// The parsed <c>case.json</c> of a case: the module name and its hyper-parameters, named as in the PyTorch
/// constructors. Getters check the type and say which key of which file is wrong.
/// </summary>
public sealed class CaseConfig
{
    private readonly JsonObject _json;

    /// <summary>Where the config came from, for messages.</summary>
    public string Source { get; }

    /// <summary>The module name (<c>"module"</c> key).</summary>
    public string Module { get; }

    /// <summary>The keys present, <c>"module"</c> included.</summary>
    public IEnumerable<string> Keys => _json.Select(p => p.Key);

    private CaseConfig(JsonObject json, string source)
    {
        _json = json;
        Source = source;
        Module = GetString("module");
    }

    /// <summary>Parses JSON text.</summary>
    /// <exception cref="CaseFormatException">Malformed JSON, not an object, or no string "module".</exception>
    public static CaseConfig Parse(string json, string source = "case.json")
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Disallow });
        }
        catch (JsonException e)
        {
            throw new CaseFormatException($"{source}: not valid JSON ({e.Message}).", e);
        }
        catch (ArgumentException e) when (e is not ArgumentNullException)
        {
            // The text itself holds an unpaired surrogate, which has no UTF-8 form to parse.
            throw new CaseFormatException($"{source}: not valid text ({e.Message}).", e);
        }
        if (node is not JsonObject obj) throw new CaseFormatException($"{source}: expected a JSON object.");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            foreach (var p in obj)
                if (!seen.Add(p.Key)) throw new CaseFormatException($"{source}: key '{p.Key}' appears twice.");
            ReadEveryString(obj);
        }
        catch (ArgumentException e)
        {
            // JsonObject refuses a repeated property name when it first enumerates.
            throw new CaseFormatException($"{source}: a key appears twice ({e.Message}).", e);
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json throws this when it reads a string whose escape is an unpaired surrogate ("\ud800").
            throw new CaseFormatException($"{source}: a string contains an invalid escape ({e.Message}).", e);
        }
        return new CaseConfig(obj, source);
    }

    /// <summary>
    /// Reads every key and string value once. System.Text.Json defers both until first use, so without this a
    /// repeated key in a nested object or an escaped unpaired surrogate would throw ArgumentException or
    /// InvalidOperationException from some later getter instead of a CaseFormatException here. Recursion is bounded
    /// by the parser's maximum depth (64).
    /// </summary>
    private static void ReadEveryString(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var p in o) ReadEveryString(p.Value);
                break;
            case JsonArray a:
                foreach (var item in a) ReadEveryString(item);
                break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                v.GetValue<string>();
                break;
        }
    }

    /// <summary>Reads and parses a file.</summary>
    public static CaseConfig Load(string path) => Parse(IO.InputFile.ReadAllText(path, 16 << 20, "case.json"), path);

    /// <summary>Builds a config from key/value pairs (values: int, double, bool, string, int[]).</summary>
    public static CaseConfig Create(string module, params (string Key, object Value)[] entries)
    {
        var obj = new JsonObject { ["module"] = module };
        foreach (var (key, value) in entries)
            obj[key] = value switch
            {
                int[] pair => new JsonArray(pair.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray()),
                int i => JsonValue.Create(i),
                double d => JsonValue.Create(d),
                bool b => JsonValue.Create(b),
                string text => JsonValue.Create(text),
                _ => throw new ArgumentException($"case.json value of '{key}' must be an int, double, bool, string or int[], got {value?.GetType().Name ?? "null"}"),
            };
        return new CaseConfig(obj, "case.json");
    }

    /// <summary>The config as indented JSON.</summary>
    public string ToJson() => _json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>Throws when a key other than "module" and <paramref name="allowed"/> is present.</summary>
    public void RejectUnknownKeys(IEnumerable<string> allowed)
    {
        var set = new HashSet<string>(allowed, StringComparer.Ordinal) { "module" };
        foreach (var p in _json)
            if (!set.Contains(p.Key))
                throw new CaseFormatException(
                    $"{Source}: unknown key '{p.Key}' for module '{Module}'; allowed keys: {string.Join(", ", set.Order(StringComparer.Ordinal))}.");
    }

    /// <summary>True when <paramref name="key"/> is present and not null.</summary>
    public bool Has(string key) => _json[key] is not null;

    /// <summary>A required or defaulted string.</summary>
    public string GetString(string key, string? defaultValue = null)
    {
        var node = _json[key];
        if (node is null) return defaultValue ?? throw Missing(key, "a string");
        if (node is JsonValue v && v.TryGetValue(out string? s)) return s;
        throw WrongType(key, "a string", node);
    }

    /// <summary>A required or defaulted boolean.</summary>
    public bool GetBool(string key, bool? defaultValue = null)
    {
        var node = _json[key];
        if (node is null) return defaultValue ?? throw Missing(key, "true or false");
        if (node is JsonValue v && v.TryGetValue(out bool b)) return b;
        throw WrongType(key, "true or false", node);
    }

    /// <summary>A required or defaulted integer.</summary>
    public int GetInt(string key, int? defaultValue = null)
    {
        var node = _json[key];
        if (node is null) return defaultValue ?? throw Missing(key, "an integer");
        return AsInt(key, node);
    }

    /// <summary>An optional integer (null when absent).</summary>
    public int? GetOptionalInt(string key) => _json[key] is { } node ? AsInt(key, node) : null;

    /// <summary>A required or defaulted number.</summary>
    public double GetDouble(string key, double? defaultValue = null)
    {
        var node = _json[key];
        if (node is null) return defaultValue ?? throw Missing(key, "a number");
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number) return v.GetValue<double>();
        throw WrongType(key, "a number", node);
    }

    /// <summary>An int or an [h, w] pair, as PyTorch's <c>_pair</c> reads it.</summary>
    public (int H, int W) GetPair(string key, (int H, int W)? defaultValue = null)
    {
        var node = _json[key];
        if (node is null) return defaultValue ?? throw Missing(key, "an integer or an [h, w] pair");
        if (node is JsonArray arr)
        {
            if (arr.Count != 2 || arr[0] is null || arr[1] is null)
                throw new CaseFormatException($"{Source}: '{key}' must be an integer or an [h, w] pair, got {node.ToJsonString()}.");
            return (AsInt(key, arr[0]!), AsInt(key, arr[1]!));
        }
        int v = AsInt(key, node);
        return (v, v);
    }

    /// <summary>A list of integers (timm's <c>layers</c>, <c>channels</c>).</summary>
    public int[] GetIntList(string key, int[]? defaultValue = null)
    {
        var node = _json[key];
        if (node is null) return defaultValue ?? throw Missing(key, "a list of integers");
        if (node is not JsonArray arr || arr.Any(a => a is null))
            throw new CaseFormatException($"{Source}: '{key}' must be a list of integers, got {node.ToJsonString()}.");
        return arr.Select(a => AsInt(key, a!)).ToArray();
    }

    private int AsInt(string key, JsonNode node)
    {
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
        {
            if (v.TryGetValue(out int i)) return i;
            double d = v.GetValue<double>();
            if (d == Math.Floor(d) && d >= int.MinValue && d <= int.MaxValue) return (int)d;
        }
        throw WrongType(key, "an integer", node);
    }

    private CaseFormatException Missing(string key, string what) =>
        new($"{Source}: module '{_json["module"]?.ToString() ?? "?"}' needs key '{key}' ({what}).");

    private CaseFormatException WrongType(string key, string what, JsonNode node) =>
        new($"{Source}: '{key}' must be {what}, got {node.ToJsonString()}.");

    /// <inheritdoc />
    public override string ToString() => _json.ToJsonString();

    internal static string Invariant(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
