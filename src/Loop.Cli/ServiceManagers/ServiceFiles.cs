namespace Loop.Cli.ServiceManagers;

using System.Security;
using System.Text;

/// <summary>The contents of the service definition files, as pure functions of what they run.</summary>
public static class ServiceFiles
{
    public const string SystemdUnitName = "loop.service";
    public const string LaunchdLabel = "dev.loop.daemon";

    /// <summary>A systemd user unit (~/.config/systemd/user/loop.service).</summary>
    public static string SystemdUnit(ServiceDefinition definition)
    {
        var text = new StringBuilder();
        text.Append("# Written by 'loop daemon:start'; 'loop daemon:stop' stops the service and removes this file.\n");
        text.Append("[Unit]\n");
        text.Append("Description=Loop daemon: Claude Code agents for chat channels and schedules\n");
        text.Append('\n');
        text.Append("[Service]\n");
        text.Append("Type=simple\n");
        text.Append("ExecStart=").AppendJoin(' ', definition.Command.Select(word => SystemdQuote(word, inCommand: true))).Append('\n');
        foreach (var (name, value) in definition.Environment.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            text.Append("Environment=").Append(SystemdQuote($"{name}={value}", inCommand: false)).Append('\n');
        }
        text.Append("Restart=on-failure\n");
        text.Append("RestartSec=5\n");
        // The daemon stops its agent containers on SIGTERM; give it time before SIGKILL.
        text.Append("TimeoutStopSec=30\n");
        text.Append('\n');
        text.Append("[Install]\n");
        text.Append("WantedBy=default.target\n");
        return text.ToString();
    }

    /// <summary>A launchd agent (~/Library/LaunchAgents/dev.loop.daemon.plist).</summary>
    public static string LaunchdPlist(ServiceDefinition definition)
    {
        var text = new StringBuilder();
        text.Append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        text.Append("<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n");
        text.Append("<!-- Written by 'loop daemon:start'; 'loop daemon:stop' stops the agent and removes this file. -->\n");
        text.Append("<plist version=\"1.0\">\n<dict>\n");
        text.Append("  <key>Label</key>\n  <string>").Append(LaunchdLabel).Append("</string>\n");
        text.Append("  <key>ProgramArguments</key>\n  <array>\n");
        foreach (var word in definition.Command)
        {
            text.Append("    <string>").Append(Xml(word)).Append("</string>\n");
        }
        text.Append("  </array>\n");
        if (definition.Environment.Count > 0)
        {
            text.Append("  <key>EnvironmentVariables</key>\n  <dict>\n");
            foreach (var (name, value) in definition.Environment.OrderBy(pair => pair.Key, StringComparer.Ordinal))
            {
                text.Append("    <key>").Append(Xml(name)).Append("</key>\n    <string>").Append(Xml(value)).Append("</string>\n");
            }
            text.Append("  </dict>\n");
        }
        text.Append("  <key>RunAtLoad</key>\n  <true/>\n");
        // Restart after a crash, not after a clean stop.
        text.Append("  <key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key>\n    <false/>\n  </dict>\n");
        text.Append("  <key>StandardOutPath</key>\n  <string>").Append(Xml(definition.LogFile)).Append("</string>\n");
        text.Append("  <key>StandardErrorPath</key>\n  <string>").Append(Xml(definition.LogFile)).Append("</string>\n");
        text.Append("</dict>\n</plist>\n");
        return text.ToString();
    }

    // systemd expands %specifiers everywhere and $VARIABLES in command lines; double quotes
    // keep a word with spaces whole, with C-style escapes inside.
    private static string SystemdQuote(string word, bool inCommand)
    {
        var text = new StringBuilder("\"");
        foreach (var c in word)
        {
            text.Append(c switch
            {
                '\\' => "\\\\",
                '"' => "\\\"",
                '\n' => "\\n",
                '%' => "%%",
                '$' when inCommand => "$$",
                _ => c.ToString(),
            });
        }
        return text.Append('"').ToString();
    }

    private static string Xml(string text) => SecurityElement.Escape(text);
}
