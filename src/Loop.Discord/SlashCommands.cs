namespace Loop.Discord;

using System.Text;
using System.Text.Json.Nodes;
using Loop.Grains;
using Loop.Domain.Budgets;
using Loop.Domain.Tasks;
using Loop.Runtime;

/// <summary>
/// The <c>/loop</c> slash command: its definition as Discord registers it, and what each
/// subcommand does. Everything goes through <see cref="TaskService"/> as the REST API does, so
/// input is validated with the same messages.
/// </summary>
public sealed class SlashCommands(TaskService tasks, Func<HealthReport> health, BudgetService budgets)
{
    private const int SubCommand = 1, SubCommandGroup = 2, Text = 3, Boolean = 5;

    /// <summary>The body of PUT /applications/{app}/commands.</summary>
    public static JsonArray Definitions() =>
    [
        new JsonObject
        {
            ["name"] = "loop",
            ["type"] = 1,
            ["description"] = "Schedule and manage Loop's agent tasks in this channel",
            ["options"] = new JsonArray
            {
                Sub("schedule", "Schedule a task in this channel",
                    Option("schedule", "cron (*/5 * * * *), interval (1h30m) or once (10m, 2026-01-05T09:00:00Z)", required: true),
                    Option("prompt", "What the agent should do", required: true),
                    TypeOption(required: true)),
                Sub("tasks", "List this channel's scheduled tasks"),
                Sub("cancel", "Cancel (delete) a scheduled task", Option("task_id", "The task's id, from /loop tasks", required: true)),
                Sub("toggle", "Turn a scheduled task on or off", Option("task_id", "The task's id, from /loop tasks", required: true)),
                Sub("edit", "Change a task's schedule, type or prompt",
                    Option("task_id", "The task's id, from /loop tasks", required: true),
                    Option("schedule", "The new schedule", required: false),
                    TypeOption(required: false),
                    Option("prompt", "The new prompt", required: false)),
                Sub("status", "Show Loop's status"),
                Sub("fork", "Start a thread that goes on from this channel's conversation, leaving it as it is",
                    Option("name", "The thread's name", required: false),
                    Option("worktree", "Work in a git worktree of its own, on a branch of its own (the channel's directory must be in a git repository)", required: false, Boolean)),
                Sub("budget", "Show this channel's budget, or set its daily and monthly limits in USD",
                    Option("daily", "USD a day (UTC), e.g. 5; none for no limit", required: false),
                    Option("monthly", "USD a month (UTC), e.g. 50; none for no limit", required: false)),
                new JsonObject
                {
                    ["type"] = SubCommandGroup,
                    ["name"] = "template",
                    ["description"] = "Task templates from config.json",
                    ["options"] = new JsonArray
                    {
                        Sub("add", "Add a template to this channel as a task",
                            Option("name", "The template's name", required: true, autocomplete: true)),
                        Sub("list", "List the configured task templates"),
                    },
                },
            },
        },
    ];

    private static JsonObject Sub(string name, string description, params JsonObject[] options) => new()
    {
        ["type"] = SubCommand,
        ["name"] = name,
        ["description"] = description,
        ["options"] = new JsonArray(options.Select(o => (JsonNode)o).ToArray()),
    };

    private static JsonObject Option(string name, string description, bool required, int type = Text, bool autocomplete = false)
    {
        var option = new JsonObject { ["type"] = type, ["name"] = name, ["description"] = description, ["required"] = required };
        if (autocomplete)
        {
            option["autocomplete"] = true;
        }
        return option;
    }

    private static JsonObject TypeOption(bool required)
    {
        var option = Option("type", "cron, interval, once or loop", required);
        option["choices"] = new JsonArray(new[] { "cron", "interval", "once", "loop" }
            .Select(t => (JsonNode)new JsonObject { ["name"] = t, ["value"] = t }).ToArray());
        return option;
    }

    /// <summary>The subcommand path ("schedule", "template add") and its options, from an interaction's data.</summary>
    public static (string Path, Dictionary<string, string> Options) Read(JsonNode? data)
    {
        var path = new List<string>();
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var options = data?["options"]?.AsArray();
        while (options is { Count: > 0 } && (int?)options[0]?["type"] is SubCommand or SubCommandGroup)
        {
            path.Add((string)options[0]!["name"]!);
            options = options[0]!["options"]?.AsArray();
        }
        foreach (var option in options ?? [])
        {
            if (option?["name"] is JsonValue name && option["value"] is JsonValue value)
            {
                values[(string)name!] = value.ToString();
            }
        }
        return (string.Join(' ', path), values);
    }

    /// <summary>Autocomplete for <c>/loop template add name:</c> (at most 25 choices, as Discord allows).</summary>
    public JsonArray TemplateChoices(string typed) =>
        new(tasks.Templates
            .Where(t => t.Name.Contains(typed, StringComparison.OrdinalIgnoreCase))
            .Take(25)
            .Select(t => (JsonNode)new JsonObject { ["name"] = t.Name, ["value"] = t.Name })
            .ToArray());

    /// <summary>Runs a subcommand for the Loop channel bound to the Discord channel; returns the answer.
    /// Throws the <see cref="TaskService"/>'s exceptions (their messages are for the user).</summary>
    public async Task<string> ExecuteAsync(string path, IReadOnlyDictionary<string, string> options, string channelId, CancellationToken cancellationToken)
    {
        string? Get(string name) => options.TryGetValue(name, out var value) && !string.IsNullOrWhiteSpace(value) ? value : null;
        var caller = Caller.User;
        switch (path)
        {
            case "schedule":
                var created = await tasks.CreateAsync(caller, new NewTaskRequest(channelId, Get("type"), Get("schedule"), Get("prompt")), cancellationToken);
                return $"Scheduled task `{created.Id}`: {Describe(created)}";
            case "tasks":
                var list = await tasks.ListAsync(caller, channelId, cancellationToken);
                if (list.Count == 0)
                {
                    return "No scheduled tasks in this channel. Add one with `/loop schedule`.";
                }
                var text = new StringBuilder($"**{list.Count} task(s) in this channel**\n");
                foreach (var task in list)
                {
                    text.Append($"`{task.Id}` **{task.Name}** {(task.Enabled ? "on" : "off")} · {Describe(task)}\n");
                }
                return text.ToString().TrimEnd();
            case "cancel":
                var taskId = Required(Get("task_id"));
                await tasks.DeleteAsync(caller, taskId, cancellationToken);
                return $"Cancelled task `{taskId}`.";
            case "toggle":
                var current = await tasks.GetAsync(caller, Required(Get("task_id")), cancellationToken);
                var toggled = await tasks.UpdateAsync(caller, current.Id, new TaskChangeRequest(Enabled: !current.Enabled), cancellationToken);
                return $"Task `{toggled.Id}` is now {(toggled.Enabled ? "enabled" : "disabled")}: {Describe(toggled)}";
            case "edit":
                if (Get("schedule") is null && Get("type") is null && Get("prompt") is null)
                {
                    throw new LoopValidationException("schedule", "nothing to change: give a new schedule, type or prompt");
                }
                var edited = await tasks.UpdateAsync(caller, Required(Get("task_id")),
                    new TaskChangeRequest(Schedule: Get("schedule"), Type: Get("type"), Prompt: Get("prompt")), cancellationToken);
                return $"Updated task `{edited.Id}`: {Describe(edited)}";
            case "status":
                return Status(await tasks.ListAsync(caller, channelId, cancellationToken));
            case "budget":
                return await BudgetAsync(caller, channelId, Get("daily"), Get("monthly"), cancellationToken);
            case "template add":
                var (added, isNew) = await tasks.AddTemplateAsync(caller, channelId, Required(Get("name"), "name"), cancellationToken);
                return isNew
                    ? $"Added template **{added.Name}** as task `{added.Id}`: {Describe(added)}"
                    : $"Template **{added.Name}** is already in this channel as task `{added.Id}`.";
            case "template list":
                if (tasks.Templates.Count == 0)
                {
                    return "No task templates are configured (add `task_templates` to config.json).";
                }
                return "**Task templates**\n" + string.Join('\n', tasks.Templates.Select(t =>
                    $"**{t.Name}** ({t.Type} `{t.Schedule}`){(string.IsNullOrWhiteSpace(t.Description) ? "" : ": " + t.Description)}"));
            default:
                return $"Unknown command `/loop {path}`.";
        }
    }

    /// <summary>Sets the limits given (the other stays as it was), then shows the channel's budget and its connector's.</summary>
    private async Task<string> BudgetAsync(Caller caller, string channelId, string? daily, string? monthly, CancellationToken cancellationToken)
    {
        var (channel, connector) = await budgets.ChatBudgetAsync(caller, channelId, daily, monthly, cancellationToken);
        var text = new StringBuilder(Describe("This channel", channel));
        if (connector is not null)
        {
            text.Append('\n').Append(Describe($"Connector {connector.Name}", connector));
        }
        return text.ToString();
    }

    private static string Describe(string what, BudgetStatus status)
    {
        string Period(BudgetPeriod period, string word)
        {
            var resets = $"resets <t:{status.ResetsAt(period).ToUnixTimeSeconds()}:R>";
            return status.Limits.Of(period) is { } limit
                ? $"{word} {BudgetWire.Usd(status.Spent(period))} of {BudgetWire.Usd(limit)} ({resets})"
                : $"{word} {BudgetWire.Usd(status.Spent(period))} spent, no limit";
        }
        var spent = status.Exhausted is null ? "" : " · **spent**: runs are refused until it resets";
        var hint = status.Limits.IsNone ? " · set one with `/loop budget daily:5 monthly:50`" : "";
        return $"**{what}**: {Period(BudgetPeriod.Day, "today")} · {Period(BudgetPeriod.Month, "this month")}{spent}{hint}";
    }

    private static string Required(string? value, string field = "task_id") =>
        value ?? throw new LoopValidationException(field, $"{field} is required");

    private string Status(IReadOnlyList<ScheduledTask> channelTasks) => ChatStatus.Text(health(), channelTasks, "This channel");

    private static string Describe(ScheduledTask task)
    {
        var what = task.Type == TaskType.Loop
            ? $"loop task ({TaskWire.ToWire(task.LoopState)}, iteration {task.Iteration}/{task.MaxIterations})"
            : $"{TaskWire.ToWire(task.Type)} `{task.Schedule}`";
        var next = task.NextRunAt is { } at && task.Enabled
            ? $", next run <t:{at.ToUnixTimeSeconds()}:R>"
            : "";
        var prompt = task.Prompt.Length <= 80 ? task.Prompt : task.Prompt[..80] + "…";
        return $"{what}{next} · {prompt.ReplaceLineEndings(" ")}";
    }
}
