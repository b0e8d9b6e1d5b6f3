namespace Loop.Cli;

using System.CommandLine;

/// <summary>The <c>loop</c> executable's commands. Exit codes: 0 ok, 1 failure, 2 bad usage.</summary>
public static class LoopCommandLine
{
    public static async Task<int> RunAsync(string[] args)
    {
        var root = new RootCommand("Loop: Claude Code agents for chat channels and schedules, each run in its own container.");
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(MigrateCommand.Create());
        root.Subcommands.Add(ClusterCommand.Create());
        OnboardCommands.AddTo(root);
        DaemonCommands.AddTo(root);
        root.Subcommands.Add(McpCommand.Create());
        root.Subcommands.Add(TasksCommand.Create());
        root.Subcommands.Add(ChannelsCommand.Create());

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                Console.Error.WriteLine($"loop: {error.Message}");
            }
            Console.Error.WriteLine($"Run '{CommandPath(parse.CommandResult)} --help' for usage.");
            return 2;
        }
        return await parse.InvokeAsync();
    }

    /// <summary>"loop tasks add" for the command a parse reached, so a usage error points to its own help.</summary>
    private static string CommandPath(System.CommandLine.Parsing.CommandResult command)
    {
        var names = new List<string>();
        for (var at = command; at.Parent is System.CommandLine.Parsing.CommandResult parent; at = parent)
        {
            names.Insert(0, at.Command.Name);
        }
        return string.Join(' ', names.Prepend("loop"));
    }
}
