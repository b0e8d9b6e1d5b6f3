namespace Loop.Dashboard.Tests;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Loop.Testing;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

[Collection(DashboardCollection.Name)]
public sealed class TasksPageTests(DashboardFixture fixture)
{
    [Fact]
    public async Task A_task_is_created_through_the_form_then_disabled_enabled_and_deleted()
    {
        var channelName = "tasks-" + Guid.NewGuid().ToString("N")[..8];
        using var created = await fixture.Daemon.Http.PostAsJsonAsync("/api/channels", new { name = channelName });
        var channelId = (string)(await LoopDaemon.ReadObjectAsync(created, HttpStatusCode.Created))["id"]!;
        var taskName = "nightly summary " + channelName;
        const string badSchedule = "every tuesday";
        const string prompt = "[[reply summary]]";

        // What the API says about that schedule, to find the same words on the page.
        using var refused = await fixture.Daemon.Http.PostAsJsonAsync("/api/tasks",
            new { channel_id = channelId, name = taskName, type = "cron", schedule = badSchedule, prompt });
        var apiMessage = (string)(await LoopDaemon.ReadObjectAsync(refused, HttpStatusCode.BadRequest))["detail"]!;

        await using var session = await fixture.OpenAsync();
        await session.RunAsync(async page =>
        {
            Ui.AcceptDialogs(page);
            await Ui.GoToAsync(page, "tasks", "Tasks");
            await Ui.Button(page, "New task").ClickAsync();
            var form = page.GetByRole(AriaRole.Heading, new() { Name = "New task", Exact = true });
            await Expect(form).ToBeVisibleAsync();
            foreach (var label in new[] { "Channel", "Name", "Type", "Schedule", "Prompt", "Time zone", "Context" })
            {
                await Expect(Ui.Field(page, label)).ToBeVisibleAsync();
            }
            // The loop settings: shown for loop tasks at least.
            await Ui.Field(page, "Type").SelectOptionAsync("loop");
            await Expect(Ui.Field(page, "Max iterations")).ToBeVisibleAsync();
            await Expect(Ui.Field(page, "Completion promise")).ToBeVisibleAsync();

            await Ui.Field(page, "Channel").SelectOptionAsync(new SelectOptionValue { Label = channelName });
            await Ui.Field(page, "Name").FillAsync(taskName);
            await Ui.Field(page, "Type").SelectOptionAsync("cron");
            await Ui.Field(page, "Schedule").FillAsync(badSchedule);
            await Ui.Field(page, "Prompt").FillAsync(prompt);
            await Ui.Button(page, "Save task").ClickAsync();
            await Ui.ExpectFieldErrorAsync(Ui.Field(page, "Schedule"), apiMessage);
            Assert.DoesNotContain(await fixture.Daemon.GetArrayAsync("/api/tasks"), t => (string)t!["name"]! == taskName);

            await Ui.Field(page, "Schedule").FillAsync("*/5 * * * *");
            await Ui.Button(page, "Save task").ClickAsync();
            await Expect(form).ToBeHiddenAsync();
            var table = page.GetByRole(AriaRole.Table);
            foreach (var column in new[] { "Name", "Channel", "Type", "Schedule", "Next run", "State", "Actions" })
            {
                await Expect(table.GetByRole(AriaRole.Columnheader, new() { Name = column, Exact = true })).ToBeVisibleAsync();
            }
            var row = table.GetByRole(AriaRole.Row).Filter(new() { HasText = taskName });
            await Expect(row).ToHaveCountAsync(1);
            await Expect(row).ToContainTextAsync("*/5 * * * *");
            await Expect(row).ToContainTextAsync(channelName);
            var task = await TaskNamedAsync(taskName);
            Assert.Equal(channelId, (string)task!["channel_id"]!);
            Assert.Equal("cron", (string)task["type"]!);
            Assert.True((bool)task["enabled"]!);

            // The form once more, for the screenshot, then Cancel closes it.
            await Ui.Button(page, "New task").ClickAsync();
            await Expect(form).ToBeVisibleAsync();
            await Screenshots.SaveAsync(page, "tasks");
            await Ui.Button(page, "Cancel").ClickAsync();
            await Expect(form).ToBeHiddenAsync();

            await row.GetByRole(AriaRole.Button, new() { Name = "Disable", Exact = true }).ClickAsync();
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Enable", Exact = true })).ToBeVisibleAsync();
            Assert.False((bool)(await TaskNamedAsync(taskName))!["enabled"]!);
            await row.GetByRole(AriaRole.Button, new() { Name = "Enable", Exact = true }).ClickAsync();
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Disable", Exact = true })).ToBeVisibleAsync();
            Assert.True((bool)(await TaskNamedAsync(taskName))!["enabled"]!);

            await row.GetByRole(AriaRole.Button, new() { Name = "Delete", Exact = true }).ClickAsync();
            await Expect(row).ToHaveCountAsync(0);
            Assert.Null(await TaskNamedAsync(taskName));
        });
    }

    [Fact]
    public async Task A_task_is_added_to_a_channel_from_a_template_of_the_config()
    {
        // Its own daemon: templates come from its config.
        var templates = new JsonArray(
            new JsonObject { ["name"] = "weekly-review", ["description"] = "Review the week", ["schedule"] = "0 9 * * 1", ["type"] = "cron", ["prompt"] = "Review the week's commits" },
            new JsonObject { ["name"] = "nightly-tests", ["schedule"] = "0 2 * * *", ["type"] = "cron", ["prompt"] = "Run the test suite" });
        await using var daemon = await LoopDaemon.StartAsync(new JsonObject { ["task_templates"] = templates });
        using var created = await daemon.Http.PostAsJsonAsync("/api/channels", new { name = "reviews" });
        var channelId = (string)(await LoopDaemon.ReadObjectAsync(created, HttpStatusCode.Created))["id"]!;

        await using var session = await fixture.OpenAsync(daemon: daemon);
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "tasks", "Tasks");
            await Ui.Button(page, "From template").ClickAsync();
            var form = page.GetByRole(AriaRole.Heading, new() { Name = "Add a task from a template", Exact = true });
            await Expect(form).ToBeVisibleAsync();
            await Ui.Field(page, "Channel").SelectOptionAsync(new SelectOptionValue { Label = "reviews" });
            await Ui.Field(page, "Template").SelectOptionAsync("weekly-review");
            await Expect(page.GetByText("Review the week ·")).ToBeVisibleAsync();
            await Ui.Button(page, "Add task").ClickAsync();
            await Expect(form).ToBeHiddenAsync();

            var row = page.GetByRole(AriaRole.Table).GetByRole(AriaRole.Row).Filter(new() { HasText = "weekly-review" });
            await Expect(row).ToHaveCountAsync(1);
            await Expect(row).ToContainTextAsync("0 9 * * 1");
            await Expect(row).ToContainTextAsync("reviews");
        });
        var task = (await daemon.GetArrayAsync("/api/tasks")).Single()!;
        Assert.Equal(channelId, (string)task["channel_id"]!);
        Assert.Equal("weekly-review", (string)task["template"]!);
        Assert.Equal("Review the week's commits", (string)task["prompt"]!);
    }

    [Fact]
    public async Task A_once_task_shows_its_instant_as_a_date_and_time_and_one_task_is_counted_as_one()
    {
        // Its own daemon: the shared one has the other tests' tasks.
        await using var daemon = await LoopDaemon.StartAsync();
        var channelId = (string)(await daemon.CreateChannelAsync())["id"]!;
        await daemon.CreateTaskAsync(new { channel_id = channelId, name = "launch", type = "once", schedule = "2030-06-01T09:30:00.1234567Z", prompt = "[[reply launched]]" });

        await using var session = await fixture.OpenAsync(daemon: daemon);
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "tasks", "Tasks");
            var row = page.GetByRole(AriaRole.Table).GetByRole(AriaRole.Row).Filter(new() { HasText = "launch" });
            var schedule = row.GetByRole(AriaRole.Cell).Nth(3);
            // The browser's locale is en-US and its time zone UTC.
            await Expect(schedule).ToHaveTextAsync(new Regex(@"^6/1/2030,\s9:30:00\sAM$"));
            await Expect(page.GetByText("page 1 of 1 · 1 task", new() { Exact = true })).ToBeVisibleAsync();
        });
    }

    [Fact]
    public async Task A_once_task_that_ran_shows_as_done_without_an_enable_button()
    {
        await using var daemon = await LoopDaemon.StartAsync();
        var channelId = (string)(await daemon.CreateChannelAsync())["id"]!;
        var id = (string)(await daemon.CreateTaskAsync(new { channel_id = channelId, name = "one-shot", type = "once", schedule = "1s", prompt = "[[reply fired]]" }))["id"]!;
        await daemon.WaitForTaskAsync(id, t => (bool)t["done"]!, TimeSpan.FromSeconds(120));

        await using var session = await fixture.OpenAsync(daemon: daemon);
        await session.RunAsync(async page =>
        {
            await Ui.GoToAsync(page, "tasks", "Tasks");
            var row = page.GetByRole(AriaRole.Table).GetByRole(AriaRole.Row).Filter(new() { HasText = "one-shot" });
            await Expect(row.GetByRole(AriaRole.Cell).Nth(5)).ToHaveTextAsync("done");
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Enable" })).ToHaveCountAsync(0);
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Disable" })).ToHaveCountAsync(0);
            await Expect(row.GetByRole(AriaRole.Button, new() { Name = "Edit" })).ToBeVisibleAsync();
        });
    }

    private async Task<JsonNode?> TaskNamedAsync(string name) =>
        (await fixture.Daemon.GetArrayAsync("/api/tasks")).SingleOrDefault(t => (string)t!["name"]! == name);
}
