// A fixture for `airlock policy from-tauri`: only its generate_handler! list is read.
mod commands;

pub fn run() {
    tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![
            commands::read_notes,
            save_note, // saves
            #[cfg(debug_assertions)]
            ping,
            unused_cmd
        ])
        .run(tauri::generate_context!())
        .expect("error while running tauri application");
}
