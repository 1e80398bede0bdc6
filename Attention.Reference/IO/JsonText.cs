using System.Text.Json;
using System.Text.Json.Serialization;

namespace Attention.Reference.IO;

/// <summary>JSON string literals through System.Text.Json's source generator (no reflection: trimming- and AOT-safe).</summary>
public static class JsonText
{
    /// <summary><paramref name="s"/> as a quoted, escaped JSON string, exactly as <c>JsonSerializer.Serialize(s)</c> writes it.</summary>
    public static string Quote(string s) => JsonSerializer.Serialize(s, JsonStrings.Default.String);
}

/// <summary>The source-generated serializer for strings.</summary>
[JsonSerializable(typeof(string))]
internal sealed partial class JsonStrings : JsonSerializerContext;
