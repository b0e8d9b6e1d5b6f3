namespace Loop.Cli;

using System.CommandLine;
using Loop.Client;
using Loop.Config;
using Loop.Docker;

/// <summary><c>loop onboard:global</c> (the Loop home) and <c>loop onboard:local</c> (a project's .mcp.json).</summary>
public static class OnboardCommands
{
    public static void AddTo(Command root)
    {
        root.Subcommands.Add(Global());
        root.Subcommands.Add(Local());
    }

    public static Command Global()
    {
        var force = new Option<bool>("--force", "-f") { Description = "Overwrite files that already exist (your changes to them are lost)" };
        var command = new Command("onboard:global", "Write <loop home>/config.json (a commented example) and the agent image files to <loop home>/container/") { force };
        command.Aliases.Add("o:global");
        command.Aliases.Add("setup");
        command.SetAction(parse => RunGlobal(parse.GetValue(force)));
        return command;
    }

    public static Command Local()
    {
        var apiUrl = new Option<string?>("--api-url")
        {
            Description = "URL of the Loop API that the MCP server calls (default: http://<api_addr from the config>)",
        };
        apiUrl.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string?>() is { } url && ApiUrlProblem(url) is { } problem)
            {
                result.AddError($"--api-url {problem}, like http://127.0.0.1:8222 (found '{url}')");
            }
        });
        var dir = new Option<string>("--dir") { Description = "Project directory (default: the current directory)" };
        dir.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<string>() is { } path && !Directory.Exists(path))
            {
                result.AddError($"--dir '{path}' is not an existing directory");
            }
        });
        var command = new Command("onboard:local", "Register the Loop MCP server in the project's .mcp.json, keeping its other servers") { apiUrl, dir };
        command.Aliases.Add("o:local");
        command.Aliases.Add("init");
        command.SetAction((parse, cancellationToken) => RunLocalAsync(parse.GetValue(apiUrl), parse.GetValue(dir), cancellationToken));
        return command;
    }

    private static int RunGlobal(bool force)
    {
        var paths = LoopPaths.FromEnvironment();
        var files = new (string Path, string Content, UnixFileMode Mode)[]
        {
            (paths.ConfigFile, ConfigExample.Text, AtomicFile.PrivateMode),
            (Path.Combine(paths.ContainerDir, "Dockerfile"), AgentImageFiles.Dockerfile, AtomicFile.ReadableMode),
            (Path.Combine(paths.ContainerDir, "entrypoint.sh"), AgentImageFiles.Entrypoint, AtomicFile.ExecutableMode),
        };

        var kept = new List<string>();
        try
        {
            CreatePrivateDirectory(paths.Home);
            Directory.CreateDirectory(paths.ContainerDir);
            foreach (var (path, content, mode) in files)
            {
                var exists = File.Exists(path);
                if (exists && !force)
                {
                    kept.Add(path);
                    continue;
                }

                AtomicFile.Write(path, content, mode);
                Console.WriteLine($"{(exists ? "Overwrote" : "Wrote")} {path}");
            }
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"loop: cannot write to {paths.Home}: {error.Message}");
            return 1;
        }

        foreach (var path in kept)
        {
            Console.WriteLine($"Kept {path} (it already exists)");
        }
        if (kept.Count > 0)
        {
            Console.WriteLine("To replace kept files with the defaults, run 'loop onboard:global --force' (your changes to them are lost).");
        }

        Console.WriteLine();
        Console.WriteLine("Next steps:");
        Console.WriteLine($"  1. Edit {paths.ConfigFile}: set anthropic_api_key or claude_code_oauth_token (or export");
        Console.WriteLine("     ANTHROPIC_API_KEY), and discord_token / discord_app_id for the Discord bot.");
        Console.WriteLine($"     The agent image is built from {paths.ContainerDir} on first start; edit it to add tools.");
        Console.WriteLine("  2. Start Loop: 'loop serve' in a terminal, or 'loop daemon:start' to run it in the background.");
        Console.WriteLine("  3. In a project directory, run 'loop onboard:local' so Claude Code there can schedule tasks.");
        return 0;
    }

    private static async Task<int> RunLocalAsync(string? apiUrl, string? dir, CancellationToken cancellationToken)
    {
        var paths = LoopPaths.FromEnvironment();
        if (apiUrl is null)
        {
            try
            {
                apiUrl = LoopApiClient.ConfiguredApiUrl(paths);
            }
            catch (ConfigException error)
            {
                Console.Error.WriteLine($"loop: {error.Message}");
                Console.Error.WriteLine("Fix the config, or name the API with --api-url.");
                return 1;
            }
        }

        apiUrl = apiUrl.TrimEnd('/');
        var projectDir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir ?? Directory.GetCurrentDirectory()));
        var file = Path.Combine(projectDir, ".mcp.json");
        McpJsonChange change;
        try
        {
            change = McpJsonFile.SetLoopServer(file, McpJsonFile.LoopServer(LoopExecutable.McpCommand, projectDir, apiUrl, paths));
        }
        catch (McpJsonException error)
        {
            Console.Error.WriteLine($"loop: {error.Message}");
            return 1;
        }
        catch (Exception error) when (error is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"loop: cannot write {file}: {error.Message}");
            return 1;
        }

        Console.WriteLine(change switch
        {
            McpJsonChange.Created => $"Created {file} with the loop MCP server (API {apiUrl})",
            McpJsonChange.Added => $"Added the loop MCP server to {file} (API {apiUrl}); its other servers are unchanged",
            McpJsonChange.Updated => $"Updated the loop MCP server in {file} (API {apiUrl}); its other servers are unchanged",
            _ => $"The loop MCP server in {file} is already up to date (API {apiUrl})",
        });
        if (LoopExecutable.McpCommand == "loop")
        {
            Console.WriteLine("It starts 'loop' from your PATH: make sure the loop binary is installed there.");
        }
        Console.WriteLine($"Claude Code started in {projectDir} will offer it (approve it when asked; /mcp lists it).");

        var probe = await DaemonProbe.ProbeAsync(apiUrl, paths.DaemonSocket, token: null, TimeSpan.FromSeconds(1), cancellationToken);
        if (!probe.Answered)
        {
            Console.WriteLine($"Note: {probe.Error}. Start Loop with 'loop serve' or 'loop daemon:start' before using the tools.");
        }
        return 0;
    }

    // The Loop home holds the config with secrets and the database: only its owner may look in.
    private static void CreatePrivateDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            return;
        }

        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private static string? ApiUrlProblem(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || string.IsNullOrEmpty(uri.Host))
        {
            return "must be an http:// or https:// URL";
        }

        // .mcp.json is often committed: no credentials in it.
        return uri.UserInfo.Length > 0 ? "must not contain a user name or password" : null;
    }
}
