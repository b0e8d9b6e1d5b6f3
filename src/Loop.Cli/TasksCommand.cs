namespace Loop.Cli;

using System.CommandLine;
using Loop.Client;

/// <summary><c>loop tasks ...</c>: a channel's scheduled tasks from a terminal. API errors print
/// one line <c>loop: &lt;detail&gt;</c> and exit 1.</summary>
public static class TasksCommand
{
    private static readonly string[] Types = ["cron", "interval", "once", "loop"];
    private static readonly string[] Contexts = ["isolated", "channel"];
    private static readonly string[] Misfires = ["run_once", "skip"];

    public static Command Create()
    {
        var common = ApiOptions.Create();
        var command = common.Group("tasks", "List, add, edit, show, toggle, start, stop and remove scheduled tasks");
        command.Subcommands.Add(List(common));
        command.Subcommands.Add(Add(common));
        command.Subcommands.Add(Edit(common));
        command.Subcommands.Add(Show(common));
        command.Subcommands.Add(Toggle(common));
        command.Subcommands.Add(LoopControl(common, "start", "Start a new cycle of a loop task", (api, id, ct) => api.StartTaskAsync(id, ct)));
        command.Subcommands.Add(LoopControl(common, "stop", "Stop a loop task's running cycle", (api, id, ct) => api.StopTaskAsync(id, ct)));
        command.Subcommands.Add(Remove(common));
        command.Subcommands.Add(Runs(common));
        return command;
    }

    private static Argument<string> TaskId() => new("task-id") { Description = "The task's id, e.g. task_01JD..." };

    private static Command List(ApiOptions common)
    {
        var channel = new Option<string?>("--channel-id") { Description = "Only this channel's tasks (default: all)" };
        var command = new Command("list", "List tasks") { channel };
        command.Aliases.Add("ls");
        command.SetAction((parse, ct) => common.RunAsync(parse, async (api, json) =>
        {
            var tasks = await api.ListTasksAsync(parse.GetValue(channel), ct);
            if (json)
            {
                Console.WriteLine(LoopText.Json(tasks));
                return;
            }
            if (tasks.Count == 0)
            {
                Console.WriteLine("no tasks");
                return;
            }
            PrintTable(
                ["ID", "CHANNEL", "NAME", "TYPE", "SCHEDULE", "ENABLED", "NEXT RUN", "PROMPT"],
                tasks.Select(t => new[]
                {
                    t.Id, t.ChannelId, t.Name, t.Type,
                    t.Type == "loop" ? $"({t.LoopState})" : t.Schedule + (t.Type == "cron" && t.Timezone is { } tz ? $" {tz}" : ""),
                    t.Done ? "done" : t.Enabled ? "yes" : "no",
                    t.NextRunAt is { } next ? LoopText.Instant(next) : "-",
                    LoopText.PromptOf(t, 40),
                }));
        }));
        return command;
    }

    private static Command Add(ApiOptions common)
    {
        var channel = new Option<string?>("--channel-id") { Description = "The channel the task belongs to (default: the channel named tasks, working in its own folder)" };
        var fields = new TaskFields(creating: true);
        var disabled = new Option<bool>("--disabled") { Description = "Create the task disabled" };
        var command = new Command("add", "Add a task to a channel") { channel };
        fields.AddTo(command);
        command.Options.Add(disabled);
        command.SetAction((parse, ct) => common.RunAsync(parse, async (api, json) =>
        {
            var given = fields.Read(parse);
            var request = new CreateTaskRequest(parse.GetValue(channel), given.Type!, given.Schedule ?? "", given.Prompt)
            {
                PromptFile = given.PromptFile,
                Timezone = given.Timezone,
                Context = given.Context,
                Name = given.Name,
                MaxIterations = given.MaxIterations,
                Misfire = given.Misfire,
                CompletionPromise = given.CompletionPromise,
                Enabled = parse.GetValue(disabled) ? false : null,
            };
            var task = await api.CreateTaskAsync(request, ct);
            Console.WriteLine(json ? LoopText.Json(task) : $"added {LoopText.Line(task)}");
        }));
        return command;
    }

    private static Command Edit(ApiOptions common)
    {
        var id = TaskId();
        var fields = new TaskFields(creating: false);
        var command = new Command("edit", "Change a task: only the options given change") { id };
        fields.AddTo(command);
        command.SetAction((parse, ct) => common.RunAsync(parse, async (api, json) =>
        {
            var change = fields.Read(parse);
            if (change == new UpdateTaskRequest())
            {
                throw new LoopApiException("nothing to change: give at least one option (see 'loop tasks edit --help')");
            }
            var task = await api.UpdateTaskAsync(parse.GetValue(id)!, change, ct);
            Console.WriteLine(json ? LoopText.Json(task) : $"updated {LoopText.Line(task)}");
        }));
        return command;
    }

    /// <summary>A task's settings as options, the same for <c>add</c> and <c>edit</c> (<c>add</c> requires
    /// the type, and the daemon a prompt or a prompt file), read with the words in the case the API takes.</summary>
    private sealed class TaskFields
    {
        private readonly Option<string?> _type = new("--type") { Description = "cron, interval, once or loop" };
        private readonly Option<string?> _schedule = new("--schedule") { Description = "cron \"*/5 * * * *\", interval \"90s\" or \"1h30m\", once \"10m\" or \"2026-12-01T09:00:00Z\"; none for loop" };
        private readonly Option<string?> _prompt = new("--prompt") { Description = "What the agent does when the task runs" };
        private readonly Option<string?> _promptFile = new("--prompt-file") { Description = "Instead of --prompt: a file of the project (relative path) read afresh at each run, e.g. PROMPT_plan.md" };
        private readonly Option<string?> _timezone = new("--timezone") { Description = "IANA time zone for cron, e.g. Europe/Berlin (default UTC)" };
        private readonly Option<string?> _context = new("--context") { Description = "isolated (default: the task's own session) or channel (the chat's session)" };
        private readonly Option<string?> _name = new("--name") { Description = "A short name, e.g. daily-summary" };
        private readonly Option<int?> _maxIterations = new("--max-iterations") { Description = "Loop tasks: most iterations per cycle (default 10)" };
        private readonly Option<string?> _misfire = new("--misfire") { Description = "Slots missed while Loop was down: run_once (default: fire once at start) or skip" };
        private readonly Option<string?> _promise = new("--completion-promise") { Description = "Loop tasks: the word the agent says as <promise>WORD</promise> when done (default DONE)" };

        private readonly bool _creating;

        public TaskFields(bool creating)
        {
            _creating = creating;
            _type.Required = creating;
            OneOf(_type, Types);
            OneOf(_context, Contexts);
            OneOf(_misfire, Misfires);
        }

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { _type, _schedule, _prompt, _promptFile, _timezone, _context, _name, _maxIterations, _misfire, _promise })
            {
                command.Options.Add(option);
            }
            command.Validators.Add(result =>
            {
                var given = new[] { result.GetResult(_prompt), result.GetResult(_promptFile) }.Count(o => o is not null);
                if (given > 1 || _creating && given == 0)
                {
                    result.AddError("give the agent's instructions as exactly one of --prompt <text> and --prompt-file <path>");
                }
            });
        }

        /// <summary>What was given; null members were not.</summary>
        public UpdateTaskRequest Read(ParseResult parse) => new()
        {
            Type = parse.GetValue(_type)?.ToLowerInvariant(),
            Schedule = parse.GetValue(_schedule),
            Prompt = parse.GetValue(_prompt),
            PromptFile = parse.GetValue(_promptFile),
            Timezone = parse.GetValue(_timezone),
            Context = parse.GetValue(_context)?.ToLowerInvariant(),
            Name = parse.GetValue(_name),
            MaxIterations = parse.GetValue(_maxIterations),
            Misfire = parse.GetValue(_misfire)?.ToLowerInvariant(),
            CompletionPromise = parse.GetValue(_promise),
        };
    }

    private static Command LoopControl(ApiOptions common, string verb, string description, Func<LoopApiClient, string, CancellationToken, Task<LoopTask>> act)
    {
        var id = TaskId();
        var command = new Command(verb, description) { id };
        command.SetAction((parse, ct) => common.RunAsync(parse, async (api, json) =>
        {
            var task = await act(api, parse.GetValue(id)!, ct);
            Console.WriteLine(json ? LoopText.Json(task) : $"{task.Id} loop {task.LoopState}, iteration {task.Iteration} of {task.MaxIterations}");
        }));
        return command;
    }

    private static Command Show(ApiOptions common)
    {
        var id = TaskId();
        var command = new Command("show", "Show one task") { id };
        command.SetAction((parse, ct) => common.RunAsync(parse, async (api, json) =>
        {
            var task = await api.GetTaskAsync(parse.GetValue(id)!, ct);
            Console.WriteLine(json ? LoopText.Json(task) : LoopText.Details(task));
        }));
        return command;
    }

    private static Command Toggle(ApiOptions common)
    {
        var id = TaskId();
        var command = new Command("toggle", "Enable a disabled task, or disable an enabled one") { id };
        command.SetAction((parse, ct) => common.RunAsync(parse, async (api, json) =>
        {
            var current = await api.GetTaskAsync(parse.GetValue(id)!, ct);
            var task = await api.UpdateTaskAsync(current.Id, new UpdateTaskRequest { Enabled = !current.Enabled }, ct);
            Console.WriteLine(json ? LoopText.Json(task) : $"{task.Id} {(task.Enabled ? "enabled" : "disabled")}");
        }));
        return command;
    }

    private static Command Remove(ApiOptions common)
    {
        var id = TaskId();
        var command = new Command("remove", "Delete a task (its past runs stay)") { id };
        command.Aliases.Add("rm");
        command.SetAction((parse, ct) => common.RunAsync(parse, async (api, json) =>
        {
            var taskId = parse.GetValue(id)!;
            await api.DeleteTaskAsync(taskId, ct);
            Console.WriteLine(json ? $"{{\"deleted\": \"{taskId}\"}}" : $"removed {taskId}");
        }));
        return command;
    }

    private static Command Runs(ApiOptions common)
    {
        var id = TaskId();
        var limit = new Option<int>("--limit") { Description = "How many runs, newest first", DefaultValueFactory = _ => 20 };
        var command = new Command("runs", "List a task's recent runs") { id, limit };
        command.SetAction((parse, ct) => common.RunAsync(parse, async (api, json) =>
        {
            var runs = await api.ListTaskRunsAsync(parse.GetValue(id)!, parse.GetValue(limit), cancellationToken: ct);
            if (json)
            {
                Console.WriteLine(LoopText.Json(runs));
                return;
            }
            if (runs.Count == 0)
            {
                Console.WriteLine("no runs yet");
                return;
            }
            PrintTable(
                ["RUN", "STATUS", "CREATED", "ELAPSED", "COST", "REPLY / ERROR"],
                runs.Select(r => new[]
                {
                    r.Id, r.Status, LoopText.Instant(r.CreatedAt),
                    r.ElapsedMs is { } ms ? $"{ms / 1000.0:0.0}s" : "-",
                    r.Usage is { } u ? $"${u.CostUsd:0.0000}" : "-",
                    LoopText.Excerpt(r.Error ?? r.Reply ?? "", 50),
                }));
        }));
        return command;
    }

    /// <summary>Like AcceptOnlyFromAmong, but the error is one line, and any case is taken (CRON is cron).</summary>
    private static void OneOf(Option option, string[] allowed) =>
        option.Validators.Add(result =>
        {
            foreach (var token in result.Tokens)
            {
                if (!allowed.Contains(token.Value, StringComparer.OrdinalIgnoreCase))
                {
                    result.AddError($"{option.Name} must be one of {string.Join(", ", allowed)} (got '{token.Value}')");
                }
            }
        });

    private static void PrintTable(string[] header, IEnumerable<string[]> rows)
    {
        var all = rows.Prepend(header).ToList();
        var widths = header.Select((_, i) => all.Max(r => r[i].Length)).ToArray();
        foreach (var row in all)
        {
            Console.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
        }
    }
}
