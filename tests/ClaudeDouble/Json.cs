namespace Loop.Tests.ClaudeDouble;

using System.Text.Encodings.Web;
using System.Text.Json;

public static class Json
{
    /// <summary>Single-line output without escaping non-ASCII text, like the real CLI's JSON.stringify.</summary>
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = false,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
