namespace Loop.Tests.ClaudeDouble;

using System.Text;
using System.Text.Json.Nodes;

/// <summary>Keeps conversations where the real CLI does:
/// <c>$CLAUDE_CONFIG_DIR</c> (default <c>$HOME/.claude</c>) <c>/projects/&lt;cwd, every
/// non-alphanumeric character replaced by '-'&gt;/&lt;session-id&gt;.jsonl</c>, one JSON object per line.
/// A session is only found from the directory it was created in, as with the real CLI.</summary>
public sealed class SessionStore(string cwd)
{
    public string ProjectDir { get; } = Path.Combine(ConfigDir(), "projects", Sanitize(cwd));

    public string PathOf(string sessionId) => Path.Combine(ProjectDir, sessionId + ".jsonl");

    public bool Exists(string sessionId) =>
        Guid.TryParse(sessionId, out _) && File.Exists(PathOf(sessionId));

    /// <summary>How many prompts the session has received before this run.</summary>
    public int CountUserTurns(string sessionId)
    {
        var path = PathOf(sessionId);
        if (!File.Exists(path))
        {
            return 0;
        }
        var turns = 0;
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            var node = JsonNode.Parse(line);
            // Tool results are stored as user entries too; only a prompt (string content) is a turn.
            if ((string?)node?["type"] == "user" && node["message"]?["content"] is JsonValue)
            {
                turns++;
            }
        }
        return turns;
    }

    public void Append(string sessionId, JsonObject entry)
    {
        Directory.CreateDirectory(ProjectDir);
        File.AppendAllText(PathOf(sessionId), entry.ToJsonString(Json.Options) + "\n", Encoding.UTF8);
    }

    private static string ConfigDir()
    {
        var configured = Environment.GetEnvironmentVariable("CLAUDE_CONFIG_DIR");
        if (!string.IsNullOrEmpty(configured))
        {
            return configured;
        }
        var home = Environment.GetEnvironmentVariable("HOME");
        return Path.Combine(string.IsNullOrEmpty(home) ? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) : home, ".claude");
    }

    private static string Sanitize(string path)
    {
        var chars = path.ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!char.IsAsciiLetterOrDigit(chars[i]))
            {
                chars[i] = '-';
            }
        }
        return new string(chars);
    }
}
