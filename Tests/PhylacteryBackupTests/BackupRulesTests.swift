import Foundation
@testable import PhylacteryBackup
import Testing

/// The rules backups follow, without a server: names, times, plans, retention, progress, the file format.
struct BackupRulesTests {
    // MARK: - Times and names

    @Test func recoveryTimesParseWithTheirZoneAndPrintAsUTC() throws {
        let time = try RecoveryTime(parsing: "2026-11-29 14:05:00+00")
        #expect(time.description == "2026-11-29 14:05:00.000000+00")
        #expect(try RecoveryTime(parsing: "2026-11-29T15:05:00.25+01:00").description == "2026-11-29 14:05:00.250000+00")
        #expect(try RecoveryTime(parsing: "2026-11-29T14:05:00.123456789Z").description == "2026-11-29 14:05:00.123456+00")
        #expect(try RecoveryTime(parsing: "2026-11-29 09:35-0430").description == "2026-11-29 14:05:00.000000+00")
        let round = try RecoveryTime(parsing: time.description)
        #expect(round == time)
        #expect(RecoveryTime(serverText: "2026-11-29 22:43:45.243366 UTC")?.description == "2026-11-29 22:43:45.243366+00")
        #expect(RecoveryTime(serverText: "2026-11-29 22:43:45.143517+00")?.microseconds == (try RecoveryTime(parsing: "2026-11-29T22:43:45.143517Z")).microseconds)
        for bad in ["2026-11-29 14:05:00", "2026-02-30 10:00:00+00", "yesterday", "2026-11-29 25:00:00+00", "2026-11-29 14:05:00+00 extra"] {
            #expect(throws: BackupError.self, "\(bad)") { try RecoveryTime(parsing: bad) }
        }
    }

    @Test func lsnsAndWALFileNames() throws {
        #expect(LSN("16/B374D848")?.value == 0x16_B374_D848)
        #expect(LSN("0/3000028")?.description == "0/3000028")
        #expect(LSN("zz") == nil)
        #expect(LSN("0/3000028")!.segment(size: 16 << 20) == 3)
        let segment = try #require(WALFileName("0000000200000001000000A3", segmentsPerId: 256))
        #expect(segment.kind == .segment && segment.timeline == 2 && segment.segment == 256 + 0xA3)
        #expect(WALFileName.segmentName(timeline: 2, segment: 256 + 0xA3, segmentsPerId: 256) == "0000000200000001000000A3")
        #expect(WALFileName("00000003.history", segmentsPerId: 256)?.kind == .history)
        #expect(WALFileName("000000010000000000000003.00000028.backup", segmentsPerId: 256)?.kind == .backupHistory)
        #expect(WALFileName("000000010000000000000003.partial", segmentsPerId: 256)?.kind == .partial)
        for junk in ["archtemp.000000010000000000000003.123", "000000010000000000000003.enc.tmp-12", "catalog.json", "00000001000000000000000G"] {
            #expect(WALFileName(junk, segmentsPerId: 256) == nil, "\(junk)")
        }
    }

    @Test func timelineHistoryDecidesWhichBackupsLieOnIt() {
        let history = TimelineHistory(timeline: 3, text: "1\t0/5000100\tbefore 2026-11-29 14:05:00+00\n2\t0/9000000\tno recovery target specified\n")
        #expect(history.contains(LSN("0/4000000")!, onTimeline: 1))
        #expect(history.contains(LSN("0/5000100")!, onTimeline: 1))
        #expect(!history.contains(LSN("0/6000000")!, onTimeline: 1), "taken on timeline 1 after timeline 2 branched off")
        #expect(history.contains(LSN("0/8000000")!, onTimeline: 2))
        #expect(history.contains(LSN("0/F000000")!, onTimeline: 3))
        #expect(!history.contains(LSN("0/1000000")!, onTimeline: 4))
        #expect(TimelineHistory.first.contains(LSN("0/1")!, onTimeline: 1))
    }

    // MARK: - Plans

    static func record(_ label: String, _ kind: BackupRecord.Kind, parent: String? = nil, start: String, stop: String, timeline: UInt32 = 1,
                       ended: String, system: String = "7") -> BackupRecord {
        BackupRecord(label: label, kind: kind, parent: parent, startLSN: LSN(start)!, stopLSN: LSN(stop)!, timeline: timeline,
                     startTime: try! RecoveryTime(parsing: ended), stopTime: try! RecoveryTime(parsing: ended), systemIdentifier: system,
                     files: [.init(name: "base.tar.gz", size: 10, sha256: "x")], dataSize: 100, postgresVersion: "18.6", phylacteryVersion: "t",
                     migrationHead: nil, keyID: nil, walSegmentSize: 16 << 20, verifiedAt: try! RecoveryTime(parsing: ended))
    }

    static let catalog = BackupCatalog(backups: [
        record("f1", .full, start: "0/2000028", stop: "0/2000100", ended: "2026-11-28 03:00:00+00"),
        record("i1", .incremental, parent: "f1", start: "0/4000028", stop: "0/4000100", ended: "2026-11-28 04:00:00+00"),
        record("f2", .full, start: "0/6000028", stop: "0/6000100", ended: "2026-11-29 03:00:00+00"),
        record("i2", .incremental, parent: "f2", start: "0/8000028", stop: "0/8000100", ended: "2026-11-29 04:00:00+00"),
        record("i3", .incremental, parent: "i2", start: "0/A000028", stop: "0/A000100", ended: "2026-11-29 05:00:00+00"),
    ])

    @Test func aTimeRestoresFromTheLastBackupThatEndedBeforeIt() throws {
        let at = try RestorePlan.make(catalog: Self.catalog, history: .first, target: .time(try RecoveryTime(parsing: "2026-11-29 04:30:00+00"), inclusive: true))
        #expect(at.chain.map(\.label) == ["f2", "i2"])
        #expect(at.followsNewestTimeline)
        let exact = try RestorePlan.make(catalog: Self.catalog, history: .first, target: .time(try RecoveryTime(parsing: "2026-11-28 04:00:00+00"), inclusive: true))
        #expect(exact.chain.map(\.label) == ["f1", "i1"])
        let latest = try RestorePlan.make(catalog: Self.catalog, history: .first, target: .latest)
        #expect(latest.chain.map(\.label) == ["f2", "i2", "i3"])
        let label = try RestorePlan.make(catalog: Self.catalog, history: .first, target: .backup("i1"))
        #expect(label.chain.map(\.label) == ["f1", "i1"])
        #expect(!label.followsNewestTimeline)
        let early = #expect(throws: BackupError.self) {
            try RestorePlan.make(catalog: Self.catalog, history: .first, target: .time(try RecoveryTime(parsing: "2026-11-27 00:00:00+00"), inclusive: true))
        }
        #expect(early?.code == .notRestorable)
        #expect(early?.message.contains("2026-11-28 03:00:00.000000+00") == true, "names the earliest restorable time")
        #expect(throws: BackupError.self) { try RestorePlan.make(catalog: Self.catalog, history: .first, target: .backup("nope")) }
        #expect(throws: BackupError.self) { try RestorePlan.make(catalog: BackupCatalog(), history: .first, target: .latest) }
    }

    @Test func backupsOnAnAbandonedBranchAreNotUsed() throws {
        // An earlier restore to 0/7000000 started timeline 2; i2 and i3 were taken on timeline 1 after it.
        let history = TimelineHistory(timeline: 2, text: "1\t0/7000000\tbefore …\n")
        let plan = try RestorePlan.make(catalog: Self.catalog, history: history, target: .latest)
        #expect(plan.chain.map(\.label) == ["f2"])
    }

    @Test func anIncrementalWhoseParentIsGoneIsNotUsed() throws {
        var catalog = Self.catalog
        catalog.backups.removeAll { $0.label == "i2" }
        #expect(catalog.chain(of: catalog["i3"]!) == nil)
        let plan = try RestorePlan.make(catalog: catalog, history: .first, target: .latest)
        #expect(plan.chain.map(\.label) == ["f2"])
    }

    // MARK: - Retention

    @Test func retentionKeepsTheNewestFullBackupsTheirIncrementalsAndTheWALAfterThem() {
        let wal = ["000000010000000000000001", "000000010000000000000002", "000000010000000000000002.00000028.backup",
                   "000000010000000000000005", "000000010000000000000006", "000000010000000000000006.00000028.backup",
                   "000000010000000000000009", "00000002.history", "000000020000000000000003.partial"]
        let plan = RetentionPlan.make(catalog: Self.catalog, archivedWAL: wal, keepFull: 1, segmentSize: 16 << 20)
        #expect(plan.removedBackups == ["f1", "i1"])
        #expect(plan.keptBackups == ["f2", "i2", "i3"])
        #expect(plan.removedWAL == ["000000010000000000000001", "000000010000000000000002", "000000010000000000000002.00000028.backup",
                                    "000000010000000000000005", "000000020000000000000003.partial"])
        let both = RetentionPlan.make(catalog: Self.catalog, archivedWAL: wal, keepFull: 2, segmentSize: 16 << 20)
        #expect(both.removedBackups.isEmpty)
        #expect(both.removedWAL == ["000000010000000000000001"])
    }

    @Test func retentionNeverRemovesTheChainOfTheNewestBackup() {
        // The newest backup is an incremental on an older full backup than the newest full one.
        var catalog = Self.catalog
        catalog.backups.append(Self.record("i4", .incremental, parent: "i1", start: "0/C000028", stop: "0/C000100", ended: "2026-11-29 06:00:00+00"))
        let plan = RetentionPlan.make(catalog: catalog, archivedWAL: [], keepFull: 1, segmentSize: 16 << 20)
        #expect(plan.removedBackups.isEmpty, "f1's chain holds the newest backup; f2 is the newest full one")
    }

    // MARK: - Progress

    @Test func meterComputesRateAndTimeLeft() {
        var meter = ProgressMeter(step: "Verifying", at: .seconds(10))
        meter.update(done: 250_000_000, total: 1_000_000_000, unit: .bytes, at: .seconds(15))
        #expect(meter.rate == 50_000_000)
        #expect(meter.remaining == .seconds(15))
        #expect(meter.line == "Verifying: 250.0 MB of 1.0 GB (25%), 50.0 MB/s, 15 s left")
        var replay = ProgressMeter(step: "Replaying", at: .zero)
        replay.update(done: 3, total: nil, unit: .segments, at: .zero)
        #expect(replay.line == "Replaying: 3 segments")
        #expect(ProgressMeter.format(.seconds(3725)) == "1 h 2 min")
        #expect(ByteSize.format(999) == "999 B")
        #expect(ByteSize.format(1_500) == "1.5 kB")
    }

    final class Output: @unchecked Sendable {
        // Written from the printer's caller only (one task), read after.
        var text = ""
        var now: Duration = .zero
    }

    @Test func plainOutputPrintsALineEveryIntervalAndTerminalsRewriteOne() {
        let plain = Output()
        let printer = ProgressPrinter(isTerminal: false, interval: .seconds(5), now: { plain.now }, write: { plain.text += $0 })
        printer.handle(.step("Taking a full base backup"))
        for second in 1...12 {
            plain.now = .seconds(Int64(second))
            printer.handle(.advanced(done: UInt64(second) * 10_000_000, total: 120_000_000, unit: .bytes))
        }
        printer.handle(.note("done"))
        let lines = plain.text.split(separator: "\n")
        #expect(lines.first == "→ Taking a full base backup")
        #expect(lines.count == 5, "\(plain.text)")  // the step, figures at 5 and 10 s, the finished one at 12 s, the note
        #expect(lines[1].hasPrefix("  Taking a full base backup: 50.0 MB of 120.0 MB (41%), 10.0 MB/s, 7 s left"), "\(lines[1])")
        // A step that finishes within the interval prints only its "→" line; a repeated final figure is not printed again.
        plain.text = ""
        printer.handle(.step("Checksumming"))
        printer.handle(.advanced(done: 5, total: 5, unit: .bytes))
        printer.handle(.advanced(done: 5, total: 5, unit: .bytes))
        #expect(plain.text == "→ Checksumming\n")
        #expect(lines[3].contains("120.0 MB of 120.0 MB (100%)"))
        #expect(lines.last == "· done")
        #expect(!plain.text.contains("\r"))

        let terminal = Output()
        let live = ProgressPrinter(isTerminal: true, now: { terminal.now }, write: { terminal.text += $0 })
        live.handle(.step("Replaying WAL"))
        terminal.now = .milliseconds(500)
        live.handle(.advanced(done: 1, total: 4, unit: .segments))
        terminal.now = .milliseconds(550)
        live.handle(.advanced(done: 2, total: 4, unit: .segments))  // within 100 ms: not redrawn
        terminal.now = .milliseconds(900)
        live.handle(.advanced(done: 4, total: 4, unit: .segments))
        live.finish()
        #expect(terminal.text.components(separatedBy: "\r").count == 3, "\(terminal.text)")
        #expect(terminal.text.hasSuffix("4 segments of 4 segments (100%), 4.4 segments/s, 0 s left\n"), "\(terminal.text)")
    }

    // MARK: - Parsing tool output

    @Test func toolOutputIsRead() {
        let basebackup = "pg_basebackup: starting\r 5462/23418 kB (23%), 0/1 tablespace (/x/base.tar.gz )\r23429/23429 kB (100%), 1/1 tablespace\npg_basebackup: base backup completed\n"
        let figures = PostgresTools.kilobyteProgress(in: basebackup)
        #expect(figures?.done == 23429 * 1024 && figures?.total == 23429 * 1024)
        let waldump = """
            rmgr: Transaction len (rec/tot):     34/    34, tx:        754, lsn: 0/06000828, prev 0/06000028, desc: COMMIT 2026-11-29 22:43:45.143517 UTC
            rmgr: Transaction len (rec/tot):     34/    34, tx:        755, lsn: 0/06000898, prev 0/06000850, desc: COMMIT 2026-11-29 22:43:45.243366 UTC; inval msgs: catcache 7
            rmgr: Transaction len (rec/tot):     34/    34, tx:        756, lsn: 0/06000900, prev 0/06000898, desc: ABORT 2026-11-29 22:43:46.000000 UTC
            """
        #expect(WALScan.commitTimes(in: waldump).map(\.description) == ["2026-11-29 22:43:45.143517+00", "2026-11-29 22:43:45.243366+00"])
        let log = """
            2026-11-29 22:44:01.287 UTC [32246] LOG:  last completed transaction was at log time 2026-11-29 22:43:45.143517+00
            2026-11-29 22:44:01.455 UTC [32246] LOG:  selected new timeline ID: 2
            """
        #expect(RestoreWorkspace.lastTransaction(in: log)?.description == "2026-11-29 22:43:45.143517+00")
        #expect(RestoreWorkspace.newTimeline(in: log) == 2)
        let pages = RestoreChecks.pages(in: "  12/40 relations (30%),   800/1000 pages (80%)\r")
        #expect(pages?.done == 800 && pages?.total == 1000)
        let relations = RestoreChecks.pages(in: "  12/40 relations (30%),   800/1000 pages (80%)", unit: "relations")
        #expect(relations?.done == 12 && relations?.total == 40)
    }

    // MARK: - Keys and sealed files

    func temporaryFile(_ name: String) -> String {
        NSTemporaryDirectory() + "phyl-seal-\(UInt32.random(in: .min ... .max))-\(name)"
    }

    @Test func keysLoadFromRawBytesOrHexAndAreNeverOverwritten() throws {
        let path = temporaryFile("key")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let key = try BackupKey.generate(at: path)
        #expect(try BackupKey.load(from: path).id == key.id)
        #expect(throws: BackupError.self) { try BackupKey.generate(at: path) }
        let hexPath = temporaryFile("hex")
        defer { try? FileManager.default.removeItem(atPath: hexPath) }
        try (key.bytes.map { String(format: "%02x", $0) }.joined() + "\n").write(toFile: hexPath, atomically: true, encoding: .utf8)
        #expect(try BackupKey.load(from: hexPath).id == key.id)
        try "a passphrase".write(toFile: hexPath, atomically: true, encoding: .utf8)
        #expect((#expect(throws: BackupError.self) { try BackupKey.load(from: hexPath) })?.code == .invalidArgument)
    }

    @Test func sealedFilesRoundTripAndRefuseTamperingTruncationAndOtherKeys() throws {
        let key = BackupKey(bytes: (0..<32).map { UInt8($0) })
        let other = BackupKey(bytes: (0..<32).map { UInt8(255 - $0) })
        var random = SystemRandomNumberGenerator()
        // Three chunks and a bit, so the final-chunk rule is exercised.
        let plain = Data((0..<(3 * SealedFile.chunkSize + 1234)).map { _ in UInt8.random(in: 0...255, using: &random) })
        let source = temporaryFile("plain"), sealed = temporaryFile("sealed"), opened = temporaryFile("opened")
        defer { for path in [source, sealed, opened] { try? FileManager.default.removeItem(atPath: path) } }
        try plain.write(to: URL(fileURLWithPath: source))
        try SealedFile.seal(file: source, to: sealed, key: key)
        let stored = try Data(contentsOf: URL(fileURLWithPath: sealed))
        #expect(stored.count == SealedFile.headerSize + 4 * (4 + 16) + plain.count)
        try SealedFile.open(file: sealed, to: opened, key: key, name: "x")
        #expect(try Data(contentsOf: URL(fileURLWithPath: opened)) == plain)

        let wrong = #expect(throws: BackupError.self) { try SealedFile.open(file: sealed, to: opened, key: other, name: "base.tar.gz.enc") }
        #expect(wrong?.code == .wrongKey)
        #expect(wrong?.message.contains(key.id) == true && wrong?.message.contains(other.id) == true)

        var flipped = stored
        flipped[SealedFile.headerSize + 4 + 2 * SealedFile.chunkSize] ^= 0x40
        try flipped.write(to: URL(fileURLWithPath: sealed))
        let tampered = #expect(throws: BackupError.self) { try SealedFile.open(file: sealed, to: opened, key: key, name: "base.tar.gz.enc") }
        #expect(tampered?.code == .invalidArchive)
        #expect(tampered?.message.contains("base.tar.gz.enc") == true)
        #expect(!FileManager.default.fileExists(atPath: opened), "nothing half-decrypted is left")

        try stored.prefix(stored.count - (1234 + 20)).write(to: URL(fileURLWithPath: sealed))
        #expect((#expect(throws: BackupError.self) { try SealedFile.open(file: sealed, to: opened, key: key, name: "x") })?.code == .invalidArchive)
    }

    @Test func walSegmentsAreDeflatedBeforeSealing() throws {
        let key = BackupKey(bytes: Array(repeating: 7, count: 32))
        var segment = Data(count: 16 << 20)
        segment.replaceSubrange(0..<20, with: Data("MARKER-not-in-the-archive".utf8.prefix(20)))
        let sealed = try SealedFile.seal(deflating: segment, key: key)
        #expect(sealed.count < 200_000, "a mostly empty segment shrinks (\(sealed.count) bytes)")
        #expect(sealed.range(of: Data("MARKER".utf8)) == nil)
        #expect(try SealedFile.open(inflating: sealed, key: key, name: "seg") == segment)
    }

    @Test func archivingAWALSegmentTwiceIsAcceptedOnlyWithTheSameContents() throws {
        let key = BackupKey(bytes: Array(repeating: 9, count: 32))
        let directory = temporaryFile("wal")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = directory + "/source"
        try Data(repeating: 1, count: 4096).write(to: URL(fileURLWithPath: source))
        let name = "000000010000000000000007"
        try WALArchive.push(segment: source, name: name, to: directory, key: key)
        try WALArchive.push(segment: source, name: name, to: directory, key: key)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == [name + ".enc", "source"])
        try Data(repeating: 2, count: 4096).write(to: URL(fileURLWithPath: source))
        #expect((#expect(throws: BackupError.self) { try WALArchive.push(segment: source, name: name, to: directory, key: key) })?.code == .invalidArchive)
        let archive = WALArchive(directory: directory, segmentSize: 16 << 20)
        #expect(archive.listing() == [name: name + ".enc"])
        #expect(try archive.read(name, key: key) == Data(repeating: 1, count: 4096))
    }
}
