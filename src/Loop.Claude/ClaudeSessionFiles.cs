namespace Loop.Claude;

using System.Text;

/// <summary>Where the <c>claude</c> CLI keeps a session: <c>projects/&lt;cwd&gt;/&lt;id&gt;.jsonl</c> under its
/// config dir (<c>~/.claude</c>), the cwd with every character but ASCII letters and digits replaced by
/// '-'. A session is found only from the directory it was created in.</summary>
public static class ClaudeSessionFiles
{
    public static string PathOf(string configDir, string cwd, string sessionId)
    {
        if (!Guid.TryParse(sessionId, out _))
        {
            throw new ArgumentException($"'{sessionId}' is not a Claude session id", nameof(sessionId));
        }
        var folder = new StringBuilder(cwd.Length);
        foreach (var c in cwd)
        {
            folder.Append(char.IsAsciiLetterOrDigit(c) ? c : '-');
        }
        return Path.Combine(configDir, "projects", folder.ToString(), sessionId + ".jsonl");
    }
}
